// vqd_model.json: what a model directory records beyond the diffusers layout. Directories converted
// from the official microsoft/VQ-Diffusion checkpoints carry it; a directory without it (ITHQ from
// the hub, the random models) is served as diffusers serves it.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "text/clip_tokenizer.h"

namespace vqd::pipeline {

inline constexpr char kModelMetadataFile[] = "vqd_model.json";

// Whose sampling arithmetic a model is served with.
enum class Sampler {
  kDiffusers,  // diffusers' VQDiffusionPipeline (the hub's ITHQ)
  kOfficial,   // microsoft/VQ-Diffusion's inference code (spec section 9.6)
};
const char* SamplerName(Sampler sampler);

struct ModelMetadata {
  Sampler sampler = Sampler::kDiffusers;
  text::TokenizerRules tokenizer_rules = text::TokenizerRules::kTransformers;
  // The checkpoint's official sampling defaults, used when a request leaves them unset.
  std::optional<double> guidance_scale;
  std::optional<double> truncation_rate;
  // Where the weights came from (checkpoint file and digest, configs, converter version); kept
  // for people, never interpreted.
  nlohmann::json source = nlohmann::json::object();

  // Reads <root>/vqd_model.json; a directory without one gets the defaults above.
  static absl::StatusOr<ModelMetadata> Load(const std::string& root);
  nlohmann::json ToJson() const;
};

}  // namespace vqd::pipeline
