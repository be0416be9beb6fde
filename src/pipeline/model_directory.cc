#include "pipeline/model_directory.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "io/json_config.h"
#include "io/weights_file.h"

namespace vqd::pipeline {
namespace fs = std::filesystem;

absl::StatusOr<ModelDirectory> ModelDirectory::Open(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return absl::NotFoundError(absl::StrCat("model directory ", root, " does not exist or is not a directory"));
  }
  VQD_ASSIGN_OR_RETURN(io::JsonConfig index, io::JsonConfig::Load((fs::path(root) / "model_index.json").string()));
  VQD_ASSIGN_OR_RETURN(std::string class_name, index.String("_class_name"));
  ModelDirectory dir;
  std::vector<const char*> required = {"transformer", "vqvae", "text_encoder", "tokenizer", "scheduler"};
  if (class_name == kClassPipelineName) {
    dir.conditioning_ = Conditioning::kClassLabel;
    required = {"class_transformer", "vqvae", "scheduler"};
  } else if (class_name != "VQDiffusionPipeline") {
    return absl::InvalidArgumentError(absl::StrCat(index.path(), ": \"_class_name\" is \"", class_name,
                                                   "\", expected \"VQDiffusionPipeline\" or \"",
                                                   kClassPipelineName, "\""));
  }
  for (const char* component : required) {
    if (!index.json().contains(component) || index.json()[component].is_null()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index.path(), ": required component \"", component, "\" is missing"));
    }
    if (!fs::is_directory(fs::path(root) / component, ec)) {
      return absl::NotFoundError(absl::StrCat("model directory ", root, " has no folder for component \"",
                                              component, "\" named in model_index.json"));
    }
  }
  dir.root_ = root;
  VQD_ASSIGN_OR_RETURN(dir.metadata_, ModelMetadata::Load(root));
  const auto& learned = index.json().find("learned_classifier_free_sampling_embeddings");
  dir.has_learned_embeddings_ = learned != index.json().end() && !learned->is_null() &&
                                fs::is_directory(fs::path(root) / "learned_classifier_free_sampling_embeddings", ec);
  return dir;
}

const char* ConditioningName(Conditioning conditioning) {
  return conditioning == Conditioning::kClassLabel ? "class_label" : "text";
}

std::string ModelDirectory::ComponentDir(absl::string_view component) const {
  return (fs::path(root_) / std::string(component)).string();
}

std::string ModelDirectory::name() const {
  fs::path p = fs::path(root_).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

absl::StatusOr<std::string> ModelDirectory::WeightsFile(absl::string_view component, absl::string_view variant,
                                                        std::string* used_variant) const {
  // diffusers' names: transformers components use model / pytorch_model, diffusers ones
  // diffusion_pytorch_model.
  const bool is_text = component == "text_encoder";
  const std::string st = is_text ? "model" : "diffusion_pytorch_model";
  const std::string bin = is_text ? "pytorch_model" : "diffusion_pytorch_model";
  const std::vector<std::string> half = {st + ".fp16.safetensors", bin + ".fp16.bin"};
  const std::vector<std::string> full = {st + ".safetensors", bin + ".bin"};
  const bool prefer_half = variant == "fp16";
  const std::string dir = ComponentDir(component);
  for (const auto* kind : {prefer_half ? &half : &full, prefer_half ? &full : &half}) {
    absl::StatusOr<std::string> found = io::FindFirstExisting(dir, *kind);
    if (found.ok()) {
      if (used_variant) *used_variant = kind == &half ? "fp16" : "";
      return found;
    }
  }
  std::vector<std::string> all = prefer_half ? half : full;
  all.insert(all.end(), (prefer_half ? full : half).begin(), (prefer_half ? full : half).end());
  return absl::NotFoundError(absl::StrCat("no weights for component \"", component, "\" in ", dir,
                                          " (looked for ", absl::StrJoin(all, ", "), ")"));
}

std::string DefaultVariant(torch::Dtype dtype) { return dtype == torch::kFloat16 ? "fp16" : ""; }

}  // namespace vqd::pipeline
