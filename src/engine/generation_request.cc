#include "engine/generation_request.h"

namespace vqd::engine {

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk: return "ok";
    case Outcome::kInvalid: return "invalid";
    case Outcome::kRejected: return "rejected";
    case Outcome::kCancelled: return "cancelled";
    case Outcome::kDeadline: return "deadline";
    case Outcome::kError: return "error";
  }
  return "error";
}

GenerationRequest::GenerationRequest(RequestParams params, std::shared_ptr<EventSink> sink,
                                     std::optional<Clock::time_point> deadline)
    : accepted_at(Clock::now()),
      plan(diffusion::ContiguousPlan(params.steps)),
      params_(std::move(params)),
      sink_(std::move(sink)),
      deadline_(deadline) {}

void GenerationRequest::Deliver(RequestEvent event) {
  std::lock_guard<std::mutex> lock(deliver_mu_);
  if (finished_.load()) return;
  sink_->Deliver(std::move(event));
}

bool GenerationRequest::MarkFinished() {
  bool expected = false;
  return finished_.compare_exchange_strong(expected, true);
}

bool GenerationRequest::Complete(const DoneEvent& done, const std::function<void()>& on_finished) {
  std::lock_guard<std::mutex> lock(deliver_mu_);
  if (!MarkFinished()) return false;
  if (on_finished) on_finished();
  sink_->Deliver(done);
  if (finish_hook_) finish_hook_();
  return true;
}

bool GenerationRequest::Fail(const absl::Status& status, Outcome outcome, const std::function<void()>& on_finished) {
  std::lock_guard<std::mutex> lock(deliver_mu_);
  if (!MarkFinished()) return false;
  if (on_finished) on_finished();
  sink_->Fail(status, outcome);
  if (finish_hook_) finish_hook_();
  return true;
}

Outcome GenerationRequest::CancellationOutcome(Clock::time_point now) const {
  return expired(now) ? Outcome::kDeadline : Outcome::kCancelled;
}

RequestTimings GenerationRequest::Timings(Clock::time_point now) const {
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  RequestTimings t;
  const bool admitted = admitted_at.time_since_epoch().count() != 0;
  t.queue_seconds = seconds((admitted ? admitted_at : now) - accepted_at);
  t.encode_seconds = encode_seconds;
  if (first_step_at.time_since_epoch().count() != 0) {
    const Clock::time_point end = last_step_at.time_since_epoch().count() != 0 ? last_step_at : now;
    t.denoise_seconds = seconds(end - first_step_at);
  }
  t.decode_seconds = decode_seconds;
  t.total_seconds = seconds(now - accepted_at);
  t.first_progress_seconds = first_progress_seconds;
  return t;
}

}  // namespace vqd::engine
