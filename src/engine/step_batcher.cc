#include "engine/step_batcher.h"

#include <algorithm>

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
  if (!stopped.empty()) {
    std::vector<std::shared_ptr<GenerationRequest>> planned;
    for (auto& r : planned_) {
      if (std::find(stopped.begin(), stopped.end(), r) == stopped.end()) planned.push_back(std::move(r));
    }
    planned_ = std::move(planned);
  }
  return stopped;
}

const std::vector<std::shared_ptr<GenerationRequest>>& StepBatcher::Plan(int64_t row_budget) {
  planned_.clear();
  int64_t rows = 0;
  for (auto& r : active_) {
    if (!planned_.empty() && rows + r->rows() > row_budget) continue;  // a smaller later one may fit
    rows += r->rows();
    const diffusion::PlannedStep& step = r->plan.at(static_cast<size_t>(r->steps_done));
    r->group.timestep = step.timestep;
    r->group.posterior_timestep = step.posterior_timestep;
    r->group.unmask_count = step.unmask_count;
    const bool preview = pipeline::PreviewDue(r->params().preview_interval, r->steps_done + 1, r->params().steps);
    r->group.x0_argmax_out = preview ? &r->preview_x0 : nullptr;
    planned_.push_back(r);
  }
  return planned_;
}

int64_t StepBatcher::planned_rows() const {
  int64_t rows = 0;
  for (const auto& r : planned_) rows += r->rows();
  return rows;
}

StepBatcher::StepOutcome StepBatcher::Commit() {
  StepOutcome out;
  std::vector<std::shared_ptr<GenerationRequest>> kept;
  auto ran = [this](const GenerationRequest* r) {
    for (const auto& p : planned_) {
      if (p.get() == r) return true;
    }
    return false;
  };
  for (auto& r : active_) {
    if (!ran(r.get())) {
      kept.push_back(std::move(r));
      continue;
    }
    ++r->steps_done;
    const RequestParams& p = r->params();
    const bool done = r->steps_done >= p.steps;
    // Progress every k steps, and always after the last step so the client sees the final grid.
    if (p.progress_interval > 0 && (r->steps_done % p.progress_interval == 0 || done)) {
      out.progress_due.push_back(r.get());
    }
    if (pipeline::PreviewDue(p.preview_interval, r->steps_done, p.steps)) out.preview_due.push_back(r.get());
    if (done) {
      active_rows_ -= r->rows();
      out.finished.push_back(std::move(r));
    } else {
      kept.push_back(std::move(r));
    }
  }
  active_ = std::move(kept);
  planned_.clear();
  return out;
}

std::vector<std::shared_ptr<GenerationRequest>> StepBatcher::TakeAll() {
  active_rows_ = 0;
  planned_.clear();
  return std::exchange(active_, {});
}

}  // namespace vqd::engine
