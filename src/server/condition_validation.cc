#include "server/condition_validation.h"

#include "absl/strings/str_cat.h"

namespace vqd::server {

absl::Status ValidateCondition(const vqdiffusion::v1::GenerateRequest& request, const pipeline::PipelineInfo& info,
                               engine::RequestParams* params) {
  if (info.conditioning == pipeline::Conditioning::kClassLabel) {
    const std::string range = absl::StrCat("[0, ", info.num_classes, ")");
    if (!request.prompt().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("prompt: model ", info.model_name,
                                                     " is class-conditional and takes no prompt; send class_label in ",
                                                     range, " instead"));
    }
    if (!request.has_class_label()) {
      return absl::InvalidArgumentError(absl::StrCat("class_label: required by the class-conditional model ",
                                                     info.model_name, ", in ", range));
    }
    if (request.class_label() < 0 || request.class_label() >= info.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("class_label: must be in ", range, ", got ", request.class_label()));
    }
    params->class_label = request.class_label();
    return absl::OkStatus();
  }
  if (request.has_class_label()) {
    return absl::InvalidArgumentError(absl::StrCat("class_label: model ", info.model_name,
                                                   " is conditioned on text; send a prompt instead"));
  }
  return absl::OkStatus();
}

}  // namespace vqd::server
