// The demo model: a small VQ-Diffusion text-to-image model the project trains itself on
// procedural scenes of shapes (tools/demo_model), in the diffusers layout, built into the
// binaries. The server serves it when no model is given; `vqd make-model --preset demo` writes it.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace vqd::demo_model {

// Writes the model directory to `dir`, which must not exist yet: into a sibling staging folder
// first, renamed into place, so that no reader ever sees half a model.
absl::Status WriteModel(const std::string& dir);

// The folder name the model is cached under: "demo-" and its fingerprint.
std::string CacheName();

}  // namespace vqd::demo_model
