// The set of requests a device is denoising, and the bookkeeping of one step: which sample
// groups run (each at its own timestep), then, after the step, which requests owe a progress
// event and which have finished. Plain data, no threads and no model: the worker drives it.
// When out-of-memory lowers the row budget below what is active, only the oldest requests that
// fit run; the others wait with their state kept and resume as rows free up.
#pragma once

#include <memory>
#include <vector>

#include "engine/generation_request.h"

namespace vqd::engine {

class StepBatcher {
 public:
  explicit StepBatcher(int64_t max_rows) : max_rows_(max_rows) {}

  int64_t max_rows() const { return max_rows_; }
  int64_t active_rows() const { return active_rows_; }
  int64_t free_rows() const { return max_rows_ - active_rows_; }
  int64_t active_images() const;
  bool empty() const { return active_.empty(); }
  const std::vector<std::shared_ptr<GenerationRequest>>& active() const { return active_; }

  // Adds a request whose state (generator, tokens, prompt) is ready. Its rows must fit.
  void Add(std::shared_ptr<GenerationRequest> request);

  // Removes and returns requests that were cancelled or whose deadline passed.
  std::vector<std::shared_ptr<GenerationRequest>> RemoveStopped(Clock::time_point now);

  // Chooses the requests of the next step: in admission order while their rows fit in
  // `row_budget`, and always at least the oldest. Sets each one's group to its current timestep.
  const std::vector<std::shared_ptr<GenerationRequest>>& Plan(int64_t row_budget);
  int64_t planned_rows() const;

  struct StepOutcome {
    std::vector<GenerationRequest*> progress_due;                // still active or just finished
    std::vector<GenerationRequest*> preview_due;                 // still active
    std::vector<std::shared_ptr<GenerationRequest>> finished;    // removed from the batch
  };
  // Records that the planned step ran: advances each planned request (still active) by one step.
  StepOutcome Commit();

  // Removes and returns every request (a failed step, shutdown).
  std::vector<std::shared_ptr<GenerationRequest>> TakeAll();

 private:
  const int64_t max_rows_;
  int64_t active_rows_ = 0;
  std::vector<std::shared_ptr<GenerationRequest>> active_;  // in admission order
  std::vector<std::shared_ptr<GenerationRequest>> planned_;
};

}  // namespace vqd::engine
