// Plain data describing a generation request as the engine sees it: its validated parameters,
// the events it produces, how it ended and how long each phase took.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "diffusion/prior_sampling.h"
#include "pipeline/edit_start.h"

namespace vqd::engine {

// A request's parameters after validation (the server fills in defaults and checks ranges).
struct RequestParams {
  std::string request_id;
  std::string prompt;
  std::optional<int64_t> class_label;  // class-conditional models, instead of the prompt
  int64_t num_images = 1;
  int64_t steps = 100;      // with time_stride > 1: the strided plan's length
  int64_t time_stride = 1;  // > 1: the official strided sampler (diffusion/sampling_plan.h)
  diffusion::PriorRule prior_rule = diffusion::PriorRule::kNone;  // fixed-count unmasking
  float prior_weight = 0.0f;
  // Editing and inpainting: the image (and mask) to start from, validated; null: all masked.
  std::shared_ptr<const pipeline::EditInput> edit;
  float guidance_scale = 5.0f;
  float truncation_rate = 1.0f;
  uint64_t seed = 0;
  int64_t progress_interval = 0;  // 0: no progress events
  int64_t preview_interval = 0;   // 0: no previews (pipeline/preview.h)
  int32_t priority = 0;           // higher first

  bool guided() const { return guidance_scale > 1.0f; }
  // Transformer rows the request occupies at every step.
  int64_t rows() const { return guided() ? 2 * num_images : num_images; }
};

// How a request ended; the label of vqd_requests_total.
enum class Outcome { kOk, kInvalid, kRejected, kCancelled, kDeadline, kError };
const char* OutcomeName(Outcome outcome);

struct RequestTimings {
  double queue_seconds = 0;    // accepted -> admitted to a batch
  double encode_seconds = 0;   // prompt encoding
  double denoise_seconds = 0;  // first step started -> last step done
  double decode_seconds = 0;   // VQ-VAE decode and PNG encoding
  double total_seconds = 0;    // accepted -> finished
  double first_progress_seconds = -1;  // admitted -> first progress event; -1 if none was sent
};

struct QueuedEvent {
  int64_t position = 0;  // requests ahead of this one
};
struct StartedEvent {
  std::string device;
  uint64_t seed = 0;
};
struct ProgressEvent {
  int64_t step = 0;  // steps completed, 1-based
  int64_t total_steps = 0;
  int64_t timestep = 0;  // the t just denoised
  torch::Tensor grids;   // [n, N] int64 on the CPU
  int64_t grid_height = 0, grid_width = 0;
  float masked_fraction = 0;
};
// What the model predicts the images to be after a step: small PNGs, one per image.
struct PreviewEvent {
  int64_t step = 0;  // steps completed, 1-based
  int64_t total_steps = 0;
  int64_t timestep = 0;
  std::vector<std::string> pngs;
  int64_t width = 0, height = 0;
};
struct ImageEvent {
  int64_t index = 0;
  std::string png;
  int64_t width = 0, height = 0;
  uint64_t seed = 0;
  torch::Tensor grid;  // [N] int64 on the CPU
  int64_t grid_height = 0, grid_width = 0;
};
struct DoneEvent {
  RequestTimings timings;
  int64_t steps = 0;
};
using RequestEvent = std::variant<QueuedEvent, StartedEvent, ProgressEvent, PreviewEvent, ImageEvent, DoneEvent>;

// Receives one request's events. Called from engine threads; implementations must not block
// (the server's implementation queues the event for the RPC's writer). After DoneEvent or
// Fail nothing more is delivered.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Deliver(RequestEvent event) = 0;
  // The request ended without DoneEvent.
  virtual void Fail(const absl::Status& status, Outcome outcome) = 0;
};

}  // namespace vqd::engine
