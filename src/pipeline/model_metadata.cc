#include "pipeline/model_metadata.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "io/json_config.h"

namespace vqd::pipeline {

const char* SamplerName(Sampler sampler) { return sampler == Sampler::kOfficial ? "official" : "diffusers"; }

absl::StatusOr<ModelMetadata> ModelMetadata::Load(const std::string& root) {
  ModelMetadata m;
  const std::string path = (std::filesystem::path(root) / kModelMetadataFile).string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return m;
  VQD_ASSIGN_OR_RETURN(io::JsonConfig json, io::JsonConfig::Load(path));
  VQD_ASSIGN_OR_RETURN(std::string sampler, json.StringOr("sampler", "diffusers"));
  if (sampler == "official") {
    m.sampler = Sampler::kOfficial;
  } else if (sampler != "diffusers") {
    return absl::InvalidArgumentError(absl::StrCat(path, ": \"sampler\" is \"", sampler, "\"; expected official or diffusers"));
  }
  VQD_ASSIGN_OR_RETURN(std::string rules, json.StringOr("tokenizer_rules", "transformers"));
  if (rules == "openai") {
    m.tokenizer_rules = text::TokenizerRules::kOpenAi;
  } else if (rules != "transformers") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": \"tokenizer_rules\" is \"", rules, "\"; expected openai or transformers"));
  }
  if (json.Has("guidance_scale") && !json.json()["guidance_scale"].is_null()) {
    VQD_ASSIGN_OR_RETURN(double g, json.Float("guidance_scale"));
    if (!std::isfinite(g) || g < 0) return absl::InvalidArgumentError(absl::StrCat(path, ": \"guidance_scale\" must be finite and >= 0"));
    m.guidance_scale = g;
  }
  if (json.Has("truncation_rate") && !json.json()["truncation_rate"].is_null()) {
    VQD_ASSIGN_OR_RETURN(double r, json.Float("truncation_rate"));
    if (!(r > 0 && r <= 1)) return absl::InvalidArgumentError(absl::StrCat(path, ": \"truncation_rate\" must be in (0, 1]"));
    m.truncation_rate = r;
  }
  if (json.Has("source") && json.json()["source"].is_object()) m.source = json.json()["source"];
  return m;
}

nlohmann::json ModelMetadata::ToJson() const {
  nlohmann::json j = {{"sampler", SamplerName(sampler)},
                      {"tokenizer_rules", tokenizer_rules == text::TokenizerRules::kOpenAi ? "openai" : "transformers"},
                      {"guidance_scale", guidance_scale ? nlohmann::json(*guidance_scale) : nlohmann::json(nullptr)},
                      {"truncation_rate", truncation_rate ? nlohmann::json(*truncation_rate) : nlohmann::json(nullptr)},
                      {"source", source}};
  return j;
}

}  // namespace vqd::pipeline
