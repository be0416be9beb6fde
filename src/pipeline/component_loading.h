// Reading one component of a model directory: its config and its weights into a module.
#pragma once

#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "io/json_config.h"
#include "nn/state_dict.h"
#include "pipeline/model_directory.h"

namespace vqd::pipeline {

absl::StatusOr<io::JsonConfig> LoadComponentConfig(const ModelDirectory& dir, absl::string_view component,
                                                   absl::string_view file = "config.json");

// Reads a component's weights (the `variant` preferred, see ModelDirectory::WeightsFile) and loads
// them into `module`, converting dtype and device.
absl::Status LoadComponentWeights(const ModelDirectory& dir, absl::string_view component, const std::string& variant,
                                  torch::nn::Module& module, nn::LoadOptions load);

}  // namespace vqd::pipeline
