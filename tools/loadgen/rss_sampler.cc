#include "rss_sampler.h"

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "absl/strings/str_format.h"

namespace vqd::loadgen {
namespace {

std::optional<double> ReadRssMb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 6, "VmRSS:") == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // kB -> MiB
  }
  return std::nullopt;
}

}  // namespace

void RssSampler::Start() {
  Sample();
  start_mb_ = last_mb_;
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::seconds(1));
      if (stop_) break;
      lock.unlock();
      Sample();
      lock.lock();
    }
  });
}

void RssSampler::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

double RssSampler::SampleNow() {
  Sample();
  std::lock_guard<std::mutex> lock(mu_);
  return last_mb_;
}

void RssSampler::MarkWarm() {
  Sample();
  std::lock_guard<std::mutex> lock(mu_);
  warm_mb_ = last_mb_;
}

void RssSampler::Sample() {
  const auto rss = ReadRssMb(pid_);
  std::lock_guard<std::mutex> lock(mu_);
  if (!rss) {
    if (!gone_) problems_.push_back(absl::StrFormat("process %d is gone (no /proc/%d/status)", pid_, pid_));
    gone_ = true;
    return;
  }
  ++samples_;
  last_mb_ = *rss;
  if (*rss > peak_mb_) peak_mb_ = *rss;
  if (limit_mb_ > 0 && *rss > limit_mb_ && !over_) {
    over_ = true;
    problems_.push_back(
        absl::StrFormat("RSS of process %d reached %.1f MiB, over the limit of %.1f MiB", pid_, *rss, limit_mb_));
  }
}

}  // namespace vqd::loadgen
