#include "engine/step_batcher.h"

#include "pipeline/generate.h"

namespace vqd::engine {

int64_t StepBatcher::active_images() const {
  int64_t n = 0;
  for (const auto& r : active_) n += r->params().num_images;
  return n;
}

void StepBatcher::Add(std::shared_ptr<GenerationRequest> request) {
  active_rows_ += request->rows();
  active_.push_back(std::move(request));
}

std::vector<std::shared_ptr<GenerationRequest>> StepBatcher::RemoveStopped(Clock::time_point now) {
  std::vector<std::shared_ptr<GenerationRequest>> stopped;
  std::vector<std::shared_ptr<GenerationRequest>> kept;
  for (auto& r : active_) {
    if (r->cancelled() || r->expired(now) || r->finished()) {
      active_rows_ -= r->rows();
      stopped.push_back(std::move(r));
    } else {
      kept.push_back(std::move(r));
    }
  }
  active_ = std::move(kept);
  return stopped;
}

std::vector<pipeline::SampleGroup*> StepBatcher::Plan() {
  std::vector<pipeline::SampleGroup*> groups;
  groups.reserve(active_.size());
  for (auto& r : active_) {
    r->group.timestep = pipeline::TimestepAt(r->params().steps, r->steps_done);
    groups.push_back(&r->group);
  }
  return groups;
}

StepBatcher::StepOutcome StepBatcher::Commit() {
  StepOutcome out;
  std::vector<std::shared_ptr<GenerationRequest>> kept;
  for (auto& r : active_) {
    ++r->steps_done;
    const RequestParams& p = r->params();
    const bool done = r->steps_done >= p.steps;
    // Progress every k steps, and always after the last step so the client sees the final grid.
    if (p.progress_interval > 0 && (r->steps_done % p.progress_interval == 0 || done)) {
      out.progress_due.push_back(r.get());
    }
    if (done) {
      active_rows_ -= r->rows();
      out.finished.push_back(std::move(r));
    } else {
      kept.push_back(std::move(r));
    }
  }
  active_ = std::move(kept);
  return out;
}

std::vector<std::shared_ptr<GenerationRequest>> StepBatcher::TakeAll() {
  active_rows_ = 0;
  return std::exchange(active_, {});
}

}  // namespace vqd::engine
