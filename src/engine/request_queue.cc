#include "engine/request_queue.h"

#include <iterator>

#include "absl/strings/str_cat.h"

namespace vqd::engine {

double RequestQueue::Rank(const GenerationRequest& request) const {
  const double priority = request.params().priority;
  if (aging_seconds_ <= 0) return priority;
  return priority - std::chrono::duration<double>(request.accepted_at - epoch_).count() / aging_seconds_;
}

absl::StatusOr<size_t> RequestQueue::Push(std::shared_ptr<GenerationRequest> request,
                                          const std::function<void(size_t position)>& on_accepted) {
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::UnavailableError("the server is shutting down and accepts no new requests");
  if (entries_.size() >= capacity_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the request queue is full (", capacity_, " requests waiting); retry later"));
  }
  auto [it, inserted] = entries_.insert(Entry{Rank(*request), next_sequence_++, std::move(request)});
  const size_t position = static_cast<size_t>(std::distance(entries_.begin(), it));
  if (on_accepted) on_accepted(position);
  SizeChanged();
  return position;
}

std::shared_ptr<GenerationRequest> RequestQueue::PopHeadIf(
    const std::function<bool(const GenerationRequest& head)>& take,
    std::vector<std::shared_ptr<GenerationRequest>>* dropped) {
  std::shared_ptr<GenerationRequest> out;
  const Clock::time_point now = Clock::now();
  absl::MutexLock lock(&mu_);
  bool changed = false;
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto& request = it->request;
    if (request->cancelled() || request->expired(now) || request->finished()) {
      if (dropped) dropped->push_back(request);
      it = entries_.erase(it);
      changed = true;
      continue;
    }
    if (take(*request)) {
      out = request;
      entries_.erase(it);
      changed = true;
    }
    break;
  }
  if (changed) SizeChanged();
  return out;
}

bool RequestQueue::Remove(const GenerationRequest* request) {
  absl::MutexLock lock(&mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->request.get() == request) {
      entries_.erase(it);
      SizeChanged();
      return true;
    }
  }
  return false;
}

std::vector<std::shared_ptr<GenerationRequest>> RequestQueue::TakeAll() {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<GenerationRequest>> out;
  for (const Entry& e : entries_) out.push_back(e.request);
  entries_.clear();
  SizeChanged();
  return out;
}

uint64_t RequestQueue::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

void RequestQueue::WaitForChange(uint64_t seen, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen; };
  mu_.AwaitWithTimeout(absl::Condition(&changed), timeout);
}

void RequestQueue::Wake() {
  absl::MutexLock lock(&mu_);
  ++version_;
}

void RequestQueue::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  ++version_;
}

bool RequestQueue::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

size_t RequestQueue::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace vqd::engine
