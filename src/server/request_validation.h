// Turns a Generate request into the engine's parameters: applies the documented defaults and
// checks every field, naming the field and the allowed range in the INVALID_ARGUMENT message.
#pragma once

#include "absl/status/statusor.h"
#include "engine/request_types.h"
#include "pipeline/vq_diffusion_pipeline.h"
#include "server/server_config.h"
#include "vqdiffusion/v1/vqdiffusion.pb.h"

namespace vqd::server {

// `max_batch_rows`: a request must fit one step's batch (an image costs 2 rows with guidance).
absl::StatusOr<engine::RequestParams> ValidateGenerateRequest(const vqdiffusion::v1::GenerateRequest& request,
                                                              const ServiceLimits& limits,
                                                              const pipeline::PipelineInfo& info,
                                                              int64_t max_batch_rows);

// A fresh id for requests that did not bring one ("req-" and 16 hex digits).
std::string NewRequestId();
// A random seed for requests that did not bring one.
uint64_t NewSeed();

}  // namespace vqd::server
