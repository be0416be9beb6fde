// The condition part of a Generate request: a prompt for text models, a class label for
// class-conditional ones. A request that sends the other kind is INVALID_ARGUMENT naming the field.
#pragma once

#include "absl/status/status.h"
#include "engine/request_types.h"
#include "pipeline/vq_diffusion_pipeline.h"
#include "vqdiffusion/v1/vqdiffusion.pb.h"

namespace vqd::server {

// Checks `request`'s prompt / class_label against the model and sets params->class_label. The
// prompt's size and encoding are checked elsewhere.
absl::Status ValidateCondition(const vqdiffusion::v1::GenerateRequest& request, const pipeline::PipelineInfo& info,
                               engine::RequestParams* params);

}  // namespace vqd::server
