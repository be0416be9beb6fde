// RSS sampling: a thread that reads VmRSS of one process from /proc/PID/status every second,
// keeping the figures at the start, once warmed up, at the peak and at the end, and reporting as
// problems the process disappearing or its RSS going over a limit (see --rss-pid, --rss-limit-mb
// and --rss-growth-limit-mb).
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vqd::loadgen {

class RssSampler {
 public:
  RssSampler(int pid, double limit_mb) : pid_(pid), limit_mb_(limit_mb) {}
  ~RssSampler() { Stop(); }

  void Start();
  void Stop();
  // One more sample now (the "end" figure).
  double SampleNow();

  // The RSS once the server is warmed up (see --rss-growth-limit-mb): a fresh sample now.
  void MarkWarm();
  double start_mb() const { return start_mb_; }
  double warm_mb() {
    std::lock_guard<std::mutex> lock(mu_);
    return warm_mb_;
  }
  double peak_mb() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_mb_;
  }
  double last_mb() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_mb_;
  }
  std::vector<std::string> problems() {
    std::lock_guard<std::mutex> lock(mu_);
    return problems_;
  }
  int samples() {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }

 private:
  void Sample();

  const int pid_;
  const double limit_mb_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  bool stop_ = false, gone_ = false, over_ = false;
  double start_mb_ = 0, peak_mb_ = 0, last_mb_ = 0, warm_mb_ = -1;
  int samples_ = 0;
  std::vector<std::string> problems_;
};

}  // namespace vqd::loadgen
