// A VQ-Diffusion model directory in the diffusers layout, as downloaded from the Hugging Face hub:
// model_index.json naming the components, one folder per component with its config and weights.
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "pipeline/model_metadata.h"

namespace vqd::pipeline {

// What a model generates from.
enum class Conditioning {
  kText,        // a prompt (VQDiffusionPipeline)
  kClassLabel,  // an ImageNet class label (VQDiffusionClassPipeline: the official ImageNet models)
};
const char* ConditioningName(Conditioning conditioning);

// The model_index.json class name of class-conditional model directories.
inline constexpr char kClassPipelineName[] = "VQDiffusionClassPipeline";

class ModelDirectory {
 public:
  // Reads and checks model_index.json (a VQDiffusionPipeline with transformer, vqvae,
  // text_encoder, tokenizer and scheduler; the learned null-embedding component is optional, as
  // on the hub's old fp16 branch; or a VQDiffusionClassPipeline with class_transformer, vqvae and
  // scheduler) and vqd_model.json when there is one.
  static absl::StatusOr<ModelDirectory> Open(const std::string& root);

  const std::string& root() const { return root_; }
  std::string ComponentDir(absl::string_view component) const;
  bool has_learned_embeddings() const { return has_learned_embeddings_; }
  Conditioning conditioning() const { return conditioning_; }
  const ModelMetadata& metadata() const { return metadata_; }

  // The weights file of a component. `variant` "fp16" prefers the hub's *.fp16.* files, "" the
  // full-precision ones; either falls back to the other kind when its own is absent, and
  // `used_variant` says which was taken. Safetensors is preferred over .bin within a kind.
  absl::StatusOr<std::string> WeightsFile(absl::string_view component, absl::string_view variant,
                                          std::string* used_variant = nullptr) const;

  // The model's name for logs and GetModelInfo: the folder name.
  std::string name() const;

 private:
  std::string root_;
  bool has_learned_embeddings_ = false;
  Conditioning conditioning_ = Conditioning::kText;
  ModelMetadata metadata_;
};

// The weights variant to prefer for a dtype: "fp16" for float16, "" (full precision) otherwise;
// bfloat16 is better rounded from the float32 weights than from the float16 ones.
std::string DefaultVariant(torch::Dtype dtype);

}  // namespace vqd::pipeline
