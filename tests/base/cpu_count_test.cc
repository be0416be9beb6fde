#include "base/cpu_count.h"

#include <gtest/gtest.h>
#include <sched.h>

namespace vqd {
namespace {

TEST(CgroupCpuQuotaTest, V2CpuMax) {
  EXPECT_EQ(ParseCgroupV2CpuMax("max 100000\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("200000 100000\n"), 2);
  EXPECT_EQ(ParseCgroupV2CpuMax("150000 100000"), 2);  // 1.5 CPUs: two threads, each throttled a little
  EXPECT_EQ(ParseCgroupV2CpuMax("50000 100000"), 1);   // never 0
  EXPECT_EQ(ParseCgroupV2CpuMax("400000"), 4);         // default period
  EXPECT_EQ(ParseCgroupV2CpuMax(""), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("garbage 100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("100000 0"), std::nullopt);
}

TEST(CgroupCpuQuotaTest, V1Quota) {
  EXPECT_EQ(ParseCgroupV1Quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("300000\n", "100000\n"), 3);
  EXPECT_EQ(ParseCgroupV1Quota("x", "100000"), std::nullopt);
}

TEST(AvailableCpusTest, WithinTheAffinityMask) {
  cpu_set_t mask;
  ASSERT_EQ(sched_getaffinity(0, sizeof(mask), &mask), 0);
  const int cpus = AvailableCpus();
  EXPECT_GE(cpus, 1);
  EXPECT_LE(cpus, CPU_COUNT(&mask));
}

}  // namespace
}  // namespace vqd
