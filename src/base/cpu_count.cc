#include "base/cpu_count.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace vqd {
namespace {

std::optional<int> QuotaCpus(double quota, double period) {
  if (!(quota > 0) || !(period > 0)) return std::nullopt;
  return std::max(1, static_cast<int>(std::ceil(quota / period)));
}

std::optional<std::string> ReadSmallFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::optional<int> ParseCgroupV2CpuMax(absl::string_view content) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::StripAsciiWhitespace(content), ' ', absl::SkipWhitespace());
  if (fields.empty() || fields[0] == "max") return std::nullopt;
  double quota = 0, period = 100000;  // the kernel's default period when only the quota is given
  if (!absl::SimpleAtod(fields[0], &quota)) return std::nullopt;
  if (fields.size() > 1 && !absl::SimpleAtod(fields[1], &period)) return std::nullopt;
  return QuotaCpus(quota, period);
}

std::optional<int> ParseCgroupV1Quota(absl::string_view quota_us, absl::string_view period_us) {
  double quota = 0, period = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(quota_us), &quota) ||
      !absl::SimpleAtod(absl::StripAsciiWhitespace(period_us), &period)) {
    return std::nullopt;
  }
  return QuotaCpus(quota, period);
}

int AvailableCpus() {
  int cpus = 0;
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) cpus = CPU_COUNT(&mask);
  if (cpus <= 0) cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  cpus = std::max(cpus, 1);
  std::optional<int> quota;
  if (auto v2 = ReadSmallFile("/sys/fs/cgroup/cpu.max")) {
    quota = ParseCgroupV2CpuMax(*v2);
  } else if (auto q = ReadSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) {
    if (auto p = ReadSmallFile("/sys/fs/cgroup/cpu/cpu.cfs_period_us")) quota = ParseCgroupV1Quota(*q, *p);
  }
  return quota ? std::min(cpus, *quota) : cpus;
}

}  // namespace vqd
