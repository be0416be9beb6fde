#include "call_registry.h"

#include <algorithm>

namespace vqd::loadgen {

CallRegistry::CallRegistry() {
  thread_ = std::thread([this] { Loop(); });
}

CallRegistry::~CallRegistry() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool CallRegistry::Register(int id, grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return false;
  calls_[id] = Entry{context, std::nullopt, {}};
  return true;
}

void CallRegistry::ScheduleCancel(int id, SteadyClock::time_point when) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    it->second.cancel_at = when;
  }
  cv_.notify_all();
}

CancelFlags CallRegistry::Unregister(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = calls_.find(id);
  if (it == calls_.end()) return {};
  CancelFlags flags = it->second.flags;
  calls_.erase(it);
  return flags;
}

int CallRegistry::CancelAll() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  for (auto& [id, e] : calls_) {
    e.flags.time_limit = true;
    e.context->TryCancel();
  }
  return static_cast<int>(calls_.size());
}

void CallRegistry::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    const auto now = SteadyClock::now();
    auto next = now + std::chrono::milliseconds(200);
    for (auto& [id, e] : calls_) {
      if (!e.cancel_at) continue;
      if (*e.cancel_at <= now) {
        e.context->TryCancel();
        e.flags.cancel_issued = true;
        e.cancel_at.reset();
      } else {
        next = std::min(next, *e.cancel_at);
      }
    }
    cv_.wait_until(lock, next);
  }
}

}  // namespace vqd::loadgen
