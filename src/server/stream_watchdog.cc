#include "server/stream_watchdog.h"

#include <algorithm>

namespace vqd::server {

StreamWatchdog::StreamWatchdog(absl::Duration timeout) : timeout_(timeout), thread_([this] { Loop(); }) {}

StreamWatchdog::~StreamWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void StreamWatchdog::Watch(const std::shared_ptr<EventStream>& stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.push_back(stream);
}

void StreamWatchdog::Loop() {
  // A stalled stream is cancelled between 1x and 1.25x the timeout after its write started.
  const auto period = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::clamp(absl::ToChronoNanoseconds(timeout_ / 4), std::chrono::nanoseconds(std::chrono::milliseconds(10)),
                 std::chrono::nanoseconds(std::chrono::seconds(1))));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, period, [this] { return stop_; });
    if (stop_) break;
    std::vector<std::shared_ptr<EventStream>> live;
    std::vector<std::weak_ptr<EventStream>> kept;
    for (auto& weak : streams_) {
      if (auto stream = weak.lock(); stream && !stream->detached()) {
        live.push_back(stream);
        kept.push_back(std::move(weak));
      }
    }
    streams_ = std::move(kept);
    lock.unlock();  // cancelling runs gRPC and engine code; new streams may register meanwhile
    const auto now = std::chrono::steady_clock::now();
    for (auto& stream : live) stream->CancelIfStalled(now, timeout_);
    live.clear();
    lock.lock();
  }
}

}  // namespace vqd::server
