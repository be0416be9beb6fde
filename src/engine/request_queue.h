// The bounded queue of requests waiting for a place in a batch: ordered by priority (higher
// first), then by arrival. Device workers pull from it at step boundaries; an idle worker waits
// on it. One mutex guards everything; it is never held while calling out of the queue.
//
// Strict priorities starve low priorities under sustained load. With `priority_aging` > 0 a
// waiting request gains one priority level per `priority_aging` waited, so no request waits
// longer than (its priority gap) x `priority_aging` behind later arrivals. Comparing
// p_a + (now - t_a) / aging with p_b + (now - t_b) / aging does not depend on `now`, so the
// order is a fixed key per request, p - t / aging, and the queue stays a sorted set.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/generation_request.h"

namespace vqd::engine {

class RequestQueue {
 public:
  // `on_size_change(size)` runs under the queue's lock after every change, so that a gauge fed
  // from it can never be overwritten by a stale size.
  explicit RequestQueue(size_t capacity, absl::Duration priority_aging = absl::ZeroDuration(),
                        std::function<void(size_t size)> on_size_change = {})
      : capacity_(capacity),
        aging_seconds_(absl::ToDoubleSeconds(priority_aging)),
        on_size_change_(std::move(on_size_change)) {}

  // Takes the request and returns how many requests are ahead of it. Its arrival time for aging
  // is `request->accepted_at`. RESOURCE_EXHAUSTED when the queue holds `capacity` requests,
  // UNAVAILABLE once closed; the caller then keeps the request and must answer the client. `on_accepted(position)` runs before any worker can see the
  // request (under the queue's lock), so the Queued event precedes every other event; it must
  // not call back into the queue.
  absl::StatusOr<size_t> Push(std::shared_ptr<GenerationRequest> request,
                              const std::function<void(size_t position)>& on_accepted = {}) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes and returns the request at the head if `take(head)` says so, else null (no
  // overtaking, so large requests do not starve). Cancelled or expired requests met on the way
  // are removed into `dropped`. `take` runs under the queue's lock and must not call back into it.
  std::shared_ptr<GenerationRequest> PopHeadIf(const std::function<bool(const GenerationRequest& head)>& take,
                                               std::vector<std::shared_ptr<GenerationRequest>>* dropped)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Removes a waiting request (cancelled by its client); false if it is not in the queue.
  bool Remove(const GenerationRequest* request) ABSL_LOCKS_EXCLUDED(mu_);

  // Removes every waiting request (shutdown).
  std::vector<std::shared_ptr<GenerationRequest>> TakeAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Counts every change a waiting worker may care about: a push, a pop, a removal, Wake(), Close().
  uint64_t version() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until version() differs from `seen` or `timeout` passes. A worker reads the version
  // before it looks at the queue, so a push between its look and its wait is never missed, and
  // a worker that leaves a request waiting (it does not fit, or another device should take it)
  // sleeps instead of spinning.
  void WaitForChange(uint64_t seen, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);

  // New pushes fail with UNAVAILABLE from now on (draining).
  void Close() ABSL_LOCKS_EXCLUDED(mu_);
  bool closed() const ABSL_LOCKS_EXCLUDED(mu_);

  size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  size_t capacity() const { return capacity_; }

 private:
  struct Entry {
    double rank;  // higher first: the priority, less the arrival time in aging periods
    uint64_t sequence;
    std::shared_ptr<GenerationRequest> request;
    bool operator<(const Entry& other) const {
      if (rank != other.rank) return rank > other.rank;
      return sequence < other.sequence;
    }
  };

  double Rank(const GenerationRequest& request) const;

  void SizeChanged() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    ++version_;
    if (on_size_change_) on_size_change_(entries_.size());
  }

  const size_t capacity_;
  const double aging_seconds_;  // 0: strict priorities
  const Clock::time_point epoch_ = Clock::now();
  const std::function<void(size_t)> on_size_change_;
  mutable absl::Mutex mu_;
  std::set<Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace vqd::engine
