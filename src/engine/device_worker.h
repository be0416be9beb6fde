// One device's engine thread. It keeps its pipeline resident and runs step-level continuous
// batching: at every step boundary it drops cancelled and expired requests, admits waiting
// requests from the shared queue while their rows fit (and while no other device is less
// loaded), runs one transformer pass over the active samples that fit the row budget, sends the
// progress events due, and decodes finished requests, each on its own.
//
// Out of device memory: the step is retried in halves and the row budget lowered, so the running
// batch shrinks (requests beyond the budget wait with their state); a request alone on an idle
// device runs even above a lowered budget and fails with RESOURCE_EXHAUSTED only if it fails
// alone; the budget grows back with time. Every libtorch call runs inside an error boundary that
// fails only the request it belongs to.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "engine/engine_observer.h"
#include "engine/load_board.h"
#include "engine/request_queue.h"
#include "engine/step_batcher.h"
#include "engine/thread_pool.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::engine {

// Test-only: called before each denoising (sub-)batch with its requests; a non-OK status is
// treated as if the step had failed with it.
using StepFaultHook = std::function<absl::Status(const std::vector<const GenerationRequest*>& batch)>;
// Test-only: called before a finished request is decoded; a non-OK status is treated as if
// decoding had failed with it.
using DecodeFaultHook = std::function<absl::Status(const GenerationRequest& request)>;
struct FaultHooks {
  StepFaultHook step;
  DecodeFaultHook decode;
};

struct WorkerOptions {
  std::string name;  // for logs and metrics: the device ("cuda:0"), suffixed "#k" when a device repeats
  int index = 0;     // this worker's slot on the load board
  int64_t max_batch_rows = 64;
  // A budget lowered by out-of-memory grows back by an eighth of the maximum per this much time
  // without another out-of-memory error.
  absl::Duration budget_recovery_interval = absl::Seconds(30);
  LoadBoard* load_board = nullptr;  // shared by the engine's workers; null: a single worker
  FaultHooks faults;                // empty in production
};

class DeviceWorker {
 public:
  DeviceWorker(std::unique_ptr<pipeline::VqDiffusionPipeline> pipeline, RequestQueue* queue, WorkerOptions options,
               EngineObserver* observer, ThreadPool* output_pool);
  ~DeviceWorker();

  void Start();
  // Stops the loop and fails the requests still running with `status`.
  void Stop(const absl::Status& status);

  const pipeline::PipelineInfo& info() const { return pipeline_->info(); }
  pipeline::VqDiffusionPipeline& pipeline() { return *pipeline_; }
  const std::string& device_name() const { return device_name_; }
  int64_t active_rows() const { return active_rows_.load(); }
  int64_t active_requests() const { return active_requests_.load(); }
  // Rows the worker admits per step now: the configured maximum, lowered after out-of-memory.
  int64_t row_budget() const { return row_budget_.load(); }

 private:
  void Loop();
  void DropStopped();
  void Admit();
  void Step();
  void RecoverBudget();
  // Runs one step for `requests`; on failure restores their state and retries in halves, so an
  // out-of-memory error shrinks the batch and any other error fails only the requests that
  // cause it. Returns the requests whose step failed, with their status.
  std::vector<std::pair<std::shared_ptr<GenerationRequest>, absl::Status>> RunStep(
      const std::vector<std::shared_ptr<GenerationRequest>>& requests);
  // Copies the grids of every request that owes a progress event in one device-to-host copy.
  void SendProgress(const std::vector<GenerationRequest*>& requests);
  // Decodes each request's preview grids (its x_0 prediction in the masked positions) to small PNGs.
  void SendPreviews(const std::vector<GenerationRequest*>& requests);
  void FinishRequests(std::vector<std::shared_ptr<GenerationRequest>> finished);
  // Decodes one finished request's grids and hands its images to the output threads.
  void FinishRequest(const std::shared_ptr<GenerationRequest>& request);
  // Encodes and delivers the images (an output thread).
  void DeliverImages(const std::shared_ptr<GenerationRequest>& request, const torch::Tensor& pixels,
                     const torch::Tensor& tokens, double decode_seconds);
  void FailRequest(const std::shared_ptr<GenerationRequest>& request, const absl::Status& status, Outcome outcome);
  void PublishLoad();

  std::unique_ptr<pipeline::VqDiffusionPipeline> pipeline_;
  RequestQueue* queue_;
  WorkerOptions options_;
  EngineObserver* observer_;
  ThreadPool* output_pool_;
  std::string device_name_;
  StepBatcher batcher_;
  std::atomic<int64_t> row_budget_;
  Clock::time_point budget_changed_at_ = Clock::now();
  int64_t admitting_rows_ = 0;  // popped from the queue, prompt not yet encoded
  std::atomic<int64_t> active_rows_{0};
  std::atomic<int64_t> active_requests_{0};
  std::atomic<bool> stop_{false};
  absl::Status stop_status_;
  std::thread thread_;
};

}  // namespace vqd::engine
