// How many CPUs this process may really use: the CPUs of its affinity mask, capped by a cgroup
// CPU quota (a container's `limits.cpu`), which the mask does not show. Thread pools sized by the
// machine's core count inside a 4-CPU container on a 64-core node spend their time throttled.
#pragma once

#include <optional>

#include "absl/strings/string_view.h"

namespace vqd {

// At least 1.
int AvailableCpus();

// cgroup v2 `cpu.max` ("max 100000" or "QUOTA PERIOD"): the quota in CPUs, rounded up; nullopt
// for no limit or unreadable content.
std::optional<int> ParseCgroupV2CpuMax(absl::string_view content);
// cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota -1: no limit).
std::optional<int> ParseCgroupV1Quota(absl::string_view quota_us, absl::string_view period_us);

}  // namespace vqd
