// Class-conditional models (the official ImageNet checkpoints): a class label per request and the
// class transformer; the unconditional branch of guidance is the model's null class.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "model/class_transformer.h"
#include "nn/state_dict.h"
#include "pipeline/conditional_denoiser.h"
#include "pipeline/model_directory.h"

namespace vqd::pipeline {

class ClassDenoiser final : public ConditionalDenoiser {
 public:
  static absl::StatusOr<std::unique_ptr<ClassDenoiser>> Load(const ModelDirectory& dir,
                                                             const nn::TensorPlacement& placement,
                                                             const std::string& variant);

  // A request's condition: its label, which must be one of the model's classes.
  absl::StatusOr<std::shared_ptr<const PromptEncoding>> EncodeClassLabel(int64_t label) const;

  torch::Tensor LogProbs(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                         const std::vector<ConditionRun>& runs) override;
  int64_t num_vector_embeds() const override { return transformer_->config().num_vector_embeds; }
  int64_t grid_height() const override { return transformer_->config().latent_height; }
  int64_t grid_width() const override { return transformer_->config().latent_width; }
  int64_t num_embeds_ada_norm() const override { return transformer_->config().num_embeds_ada_norm; }
  int64_t transformer_parameters() const override { return nn::CountParameters(*transformer_); }

  int64_t num_classes() const { return transformer_->config().num_classes; }
  model::ClassTransformer& transformer() { return transformer_; }

 private:
  ClassDenoiser() = default;

  torch::Device device_ = torch::kCPU;
  model::ClassTransformer transformer_{nullptr};
};

}  // namespace vqd::pipeline
