// One generation request inside the engine: its parameters, its cancellation and deadline, the
// timestamps of its phases, and (while a device runs it) its denoising state.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "diffusion/sampling_plan.h"
#include "engine/request_types.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd::engine {

using Clock = std::chrono::steady_clock;

class GenerationRequest {
 public:
  GenerationRequest(RequestParams params, std::shared_ptr<EventSink> sink,
                    std::optional<Clock::time_point> deadline = std::nullopt);

  const RequestParams& params() const { return params_; }
  const std::string& id() const { return params_.request_id; }
  int64_t rows() const { return params_.rows(); }

  // Any thread. The request leaves its batch at the next step boundary (or the queue at once).
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  bool expired(Clock::time_point now) const { return deadline_ && now >= *deadline_; }
  std::optional<Clock::time_point> deadline() const { return deadline_; }

  // Events go to the sink until the request is finished; Finish/Fail happen exactly once (later
  // calls are ignored), so racing paths (cancel vs. completion) cannot answer twice.
  void Deliver(RequestEvent event);
  // Sends DoneEvent; returns false if already finished. `on_finished` (logs, metrics) runs first,
  // once, before the client can see the end, so that a client reading metrics after its last
  // event finds its request counted.
  bool Complete(const DoneEvent& done, const std::function<void()>& on_finished = {});
  bool Fail(const absl::Status& status, Outcome outcome, const std::function<void()>& on_finished = {});
  bool finished() const { return finished_.load(); }
  // The outcome a cancelled request should report: deadline if its deadline passed, else cancelled.
  Outcome CancellationOutcome(Clock::time_point now) const;
  // Runs once when the request finishes, however it finishes (the engine counts the requests it
  // accepted and has not answered). Set before the request is visible to other threads.
  void SetFinishHook(std::function<void()> hook) { finish_hook_ = std::move(hook); }

  // Phase timestamps (written by the engine thread that owns the request at the time).
  Clock::time_point accepted_at;
  Clock::time_point admitted_at;
  Clock::time_point first_step_at;
  Clock::time_point last_step_at;
  double encode_seconds = 0;
  double decode_seconds = 0;
  double first_progress_seconds = -1;
  RequestTimings Timings(Clock::time_point now) const;

  // Denoising state, owned by the device worker running the request.
  std::unique_ptr<torch::Generator> generator;
  pipeline::SampleGroup group;
  // What each step visits: diffusers' plan until admission sets the request's own (its stride, its
  // edit's chain and its fixed-count sampling's counts).
  std::vector<diffusion::PlannedStep> plan;
  torch::Tensor preview_x0;                  // the x_0 prediction of a step that owes a preview
  int64_t steps_done = 0;
  bool started = false;

 private:
  bool MarkFinished();

  RequestParams params_;
  std::shared_ptr<EventSink> sink_;
  std::optional<Clock::time_point> deadline_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  std::function<void()> finish_hook_;
  std::mutex deliver_mu_;  // keeps events of one request in order across threads
};

}  // namespace vqd::engine
