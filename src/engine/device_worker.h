// One device's engine thread. It keeps its pipeline resident and runs step-level continuous
// batching: at every step boundary it drops cancelled and expired requests, admits waiting
// requests from the shared queue while their rows fit, runs one transformer pass over all
// active samples, sends the progress events due, and hands finished requests to the decoder.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine_observer.h"
#include "engine/request_queue.h"
#include "engine/step_batcher.h"
#include "engine/thread_pool.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::engine {

// Test-only: called before each denoising (sub-)batch with its requests; a non-OK status is
// treated as if the step had failed with it.
using StepFaultHook = std::function<absl::Status(const std::vector<const GenerationRequest*>& batch)>;

struct WorkerOptions {
  std::string name;  // for logs and metrics: the device ("cuda:0"), suffixed "#k" when a device repeats
  int64_t max_batch_rows = 64;
  StepFaultHook fault_hook;  // empty in production
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
  // Runs one step for `requests`; on failure restores their state and retries in halves, so an
  // out-of-memory error shrinks the batch and any other error fails only the requests that
  // cause it. Returns the requests whose step failed, with their status.
  std::vector<std::pair<std::shared_ptr<GenerationRequest>, absl::Status>> RunStep(
      const std::vector<std::shared_ptr<GenerationRequest>>& requests);
  // Copies the grids of every request that owes a progress event in one device-to-host copy.
  void SendProgress(const std::vector<GenerationRequest*>& requests);
  void FinishRequests(std::vector<std::shared_ptr<GenerationRequest>> finished);
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
  std::atomic<int64_t> active_rows_{0};
  std::atomic<int64_t> active_requests_{0};
  std::atomic<bool> stop_{false};
  absl::Status stop_status_;
  std::thread thread_;
};

}  // namespace vqd::engine
