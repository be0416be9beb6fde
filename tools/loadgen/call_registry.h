// Calls in flight: scheduled cancellations and the time limit. The CallRegistry holds the context
// of every call in flight; its thread calls TryCancel on a call once the call's scheduled time has
// come, and at the time limit it cancels every call still in flight and refuses new ones. Also the
// clock that times the calls and the run.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace vqd::loadgen {

using SteadyClock = std::chrono::steady_clock;

inline double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

struct CancelFlags {
  bool cancel_issued = false;  // TryCancel called by the schedule
  bool time_limit = false;     // TryCancel called because the time limit was reached
};

class CallRegistry {
 public:
  CallRegistry();
  ~CallRegistry();

  // False once the time limit was reached: do not start the call.
  bool Register(int id, grpc::ClientContext* context);
  void ScheduleCancel(int id, SteadyClock::time_point when);
  // After Finish: the context may be destroyed once this returns.
  CancelFlags Unregister(int id);
  // The time limit: cancel everything in flight and refuse new calls. Returns how many.
  int CancelAll();
  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }
  int in_flight() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(calls_.size());
  }

 private:
  struct Entry {
    grpc::ClientContext* context;
    std::optional<SteadyClock::time_point> cancel_at;
    CancelFlags flags;
  };

  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Entry> calls_;
  bool stopping_ = false, shutdown_ = false;
  std::thread thread_;
};

}  // namespace vqd::loadgen
