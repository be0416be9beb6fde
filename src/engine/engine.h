// The serving engine: one bounded priority queue feeding one DeviceWorker per device, each with
// the whole pipeline resident. The server submits validated requests and receives their events
// through each request's EventSink.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/device_worker.h"
#include "engine/engine_observer.h"
#include "engine/generation_request.h"
#include "engine/load_board.h"
#include "engine/request_queue.h"
#include "engine/thread_pool.h"

namespace vqd::engine {

struct EngineOptions {
  std::vector<torch::Device> devices = {torch::kCPU};  // a worker and a pipeline copy each
  torch::Dtype dtype = torch::kFloat32;
  std::optional<std::string> variant;  // weights files to prefer; see PipelineOptions
  std::optional<bool> fused;           // the fast path; see PipelineOptions
  int64_t max_batch_rows = 64;         // transformer rows per step and device
  size_t max_queue = 256;              // waiting requests
  absl::Duration priority_aging;       // a waiting request gains a priority level per this; 0: strict
  int output_threads = 2;              // PNG encoding and delivery
  // After out-of-memory lowers a device's row budget, it grows back by an eighth of the maximum
  // per this much time without another out-of-memory error, busy or idle.
  absl::Duration budget_recovery_interval = absl::Seconds(30);
  FaultHooks faults;                   // tests only
};

class Engine {
 public:
  // Loads the model on every device (in parallel) and starts the workers.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string& model_dir, const EngineOptions& options,
                                                        EngineObserver* observer);
  ~Engine();

  // Queues the request. On OK the engine answers it (events, then Done or a failure). On error
  // (RESOURCE_EXHAUSTED: queue full; UNAVAILABLE: draining; INVALID_ARGUMENT: it can never fit
  // a batch) nothing was sent and the caller answers the client with the status.
  absl::Status Submit(const std::shared_ptr<GenerationRequest>& request);

  // The client went away: a waiting request is answered at once, a running one leaves its batch
  // at the next step boundary.
  void Cancel(const std::shared_ptr<GenerationRequest>& request);

  // Refuses new requests from now on (UNAVAILABLE); accepted ones keep running.
  void StopIntake();
  bool accepting() const { return !queue_.closed(); }
  // Waits until every accepted request has been answered (waiting, having its prompt encoded,
  // denoising, decoding or being delivered all count); false on timeout.
  bool WaitUntilIdle(absl::Duration timeout);
  // Stops the workers; whatever is still waiting or running is answered with `reason`.
  void Shutdown(const absl::Status& reason);

  const pipeline::PipelineInfo& info() const { return workers_.front()->info(); }
  std::vector<std::string> device_names() const;
  const EngineOptions& options() const { return options_; }
  size_t queue_depth() const { return queue_.size(); }
  int64_t active_requests() const;
  // Requests accepted and not yet answered, wherever they are.
  int64_t unfinished_requests() const { return unfinished_->load(); }
  // Direct access to a device's pipeline (benchmarks, tests).
  DeviceWorker& worker(size_t i) { return *workers_.at(i); }
  size_t num_workers() const { return workers_.size(); }

 private:
  Engine(const EngineOptions& options, EngineObserver* observer);

  EngineOptions options_;
  EngineObserver* observer_;
  RequestQueue queue_;
  // Shared with the finish hooks of the requests, which may outlive a failed Create.
  std::shared_ptr<std::atomic<int64_t>> unfinished_ = std::make_shared<std::atomic<int64_t>>(0);
  std::unique_ptr<LoadBoard> load_board_;
  std::unique_ptr<ThreadPool> output_pool_;
  std::vector<std::unique_ptr<DeviceWorker>> workers_;
  bool shut_down_ = false;
};

}  // namespace vqd::engine
