// Hooks through which the engine reports what it does; the server implements them with
// Prometheus metrics. Called from engine threads; implementations must be cheap and thread-safe.
#pragma once

#include <string>

#include "engine/request_types.h"

namespace vqd::engine {

class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // One denoising step of a device: transformer rows and requests in it, wall time.
  virtual void OnStep(const std::string& device, int64_t rows, int64_t requests, double seconds) {}
  virtual void OnTextEncoded(double seconds) {}
  // One batched decode (VQ-VAE and PNG) of `images` images.
  virtual void OnDecoded(double seconds, int64_t images) {}
  // Seconds from a request's admission to its first progress event.
  virtual void OnFirstProgress(double seconds) {}
  virtual void OnQueueDepth(int64_t depth) {}
  virtual void OnActive(const std::string& device, int64_t requests, int64_t images) {}
  // Every request that the engine accepted ends here exactly once.
  virtual void OnRequestFinished(const std::string& request_id, Outcome outcome, const RequestTimings& timings,
                                 int64_t images, const absl::Status& status) {}
};

}  // namespace vqd::engine
