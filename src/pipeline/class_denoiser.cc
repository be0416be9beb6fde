#include "pipeline/class_denoiser.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "pipeline/component_loading.h"

namespace vqd::pipeline {

absl::StatusOr<std::unique_ptr<ClassDenoiser>> ClassDenoiser::Load(const ModelDirectory& dir,
                                                                   const nn::TensorPlacement& placement,
                                                                   const std::string& variant) {
  std::unique_ptr<ClassDenoiser> d(new ClassDenoiser());
  d->device_ = placement.device;
  VQD_ASSIGN_OR_RETURN(io::JsonConfig json, LoadComponentConfig(dir, "class_transformer"));
  VQD_ASSIGN_OR_RETURN(model::ClassTransformerConfig config, model::ClassTransformerConfig::FromJson(json));
  VQD_RETURN_IF_ERROR(CatchTorch("building the class transformer",
                                 [&] { d->transformer_ = model::ClassTransformer(config, placement); }));
  VQD_RETURN_IF_ERROR(LoadComponentWeights(dir, "class_transformer", variant, *d->transformer_, {}));
  d->transformer_->eval();
  VQD_RETURN_IF_ERROR(CatchTorch("tabulating the class transformer's modulations", [&] {
    torch::InferenceMode inference;
    d->transformer_->PrepareForInference();
  }));
  return d;
}

absl::StatusOr<std::shared_ptr<const PromptEncoding>> ClassDenoiser::EncodeClassLabel(int64_t label) const {
  if (label < 0 || label >= num_classes()) {
    return absl::InvalidArgumentError(
        absl::StrCat("class_label: must be in [0, ", num_classes(), "), got ", label));
  }
  auto encoding = std::make_shared<PromptEncoding>();
  encoding->class_label = label;
  return std::shared_ptr<const PromptEncoding>(std::move(encoding));
}

torch::Tensor ClassDenoiser::LogProbs(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                      const std::vector<ConditionRun>& runs) {
  std::vector<int64_t> labels;
  for (const ConditionRun& run : runs) {
    const int64_t label = run.condition ? run.condition->class_label.value() : transformer_->config().null_class_id;
    labels.insert(labels.end(), run.rows, label);
  }
  return transformer_(tokens, timesteps, torch::tensor(labels, torch::kInt64).to(device_));
}

}  // namespace vqd::pipeline
