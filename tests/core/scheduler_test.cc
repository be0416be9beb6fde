// The VQ-Diffusion scheduler pieces (schedules, posterior, Gumbel sampling, truncation, RNG)
// against diffusers' VQDiffusionScheduler on the tiny model's 17 classes, plus the ITHQ reference
// values of the spec's appendix A.
#include <gtest/gtest.h>

#include "common/parity_data.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/q_posterior.h"
#include "diffusion/truncation.h"
#include "diffusion/vq_schedule.h"

namespace vqd::diffusion {
namespace {

using testing::AllClose;
using testing::Golden;

VqSchedule TinySchedule() {
  VqScheduleConfig config;
  config.num_vec_classes = 17;
  return VqSchedule::Build(config);
}

TEST(VqScheduleTest, MatchesDiffusersLogSchedules) {
  VQD_REQUIRE_PARITY();
  VqSchedule s = TinySchedule();
  // Both have -inf at index T of the cumulative b and c; AllClose accepts equal infinities.
  EXPECT_TRUE(AllClose("log_at", s.log_at, Golden("scheduler.log_at"), 0));
  EXPECT_TRUE(AllClose("log_bt", s.log_bt, Golden("scheduler.log_bt"), 0));
  EXPECT_TRUE(AllClose("log_ct", s.log_ct, Golden("scheduler.log_ct"), 0));
  EXPECT_TRUE(AllClose("log_cumprod_at", s.log_cumprod_at, Golden("scheduler.log_cumprod_at"), 0));
  EXPECT_TRUE(AllClose("log_cumprod_bt", s.log_cumprod_bt, Golden("scheduler.log_cumprod_bt"), 0));
  EXPECT_TRUE(AllClose("log_cumprod_ct", s.log_cumprod_ct, Golden("scheduler.log_cumprod_ct"), 0));
}

TEST(VqScheduleTest, IthqAppendixValues) {
  VqSchedule s = VqSchedule::Build(VqScheduleConfig{});  // ITHQ: 4097 classes, T = 100
  auto at = [](const torch::Tensor& t, int64_t i) { return t[i].item<float>(); };
  EXPECT_FLOAT_EQ(at(s.log_at, 0), -1.00000498e-05f);
  EXPECT_FLOAT_EQ(at(s.log_at, 50), -0.0202023443f);
  EXPECT_FLOAT_EQ(at(s.log_at, 99), -7.02403784f);
  EXPECT_FLOAT_EQ(at(s.log_bt, 1), -26.7283974f);
  EXPECT_FLOAT_EQ(at(s.log_ct, 98), -0.69364208f);
  EXPECT_FLOAT_EQ(at(s.log_cumprod_at, 98), -4.59424829f);
  EXPECT_FLOAT_EQ(at(s.log_cumprod_bt, 0), -22.133276f);
  EXPECT_FLOAT_EQ(at(s.log_cumprod_ct, 2), -3.90154624f);
  EXPECT_EQ(at(s.log_cumprod_at, 100), 0.0f);
  EXPECT_TRUE(std::isinf(at(s.log_cumprod_bt, 100)));
}

TEST(QPosteriorTest, MatchesDiffusers) {
  VQD_REQUIRE_PARITY();
  VqSchedule s = TinySchedule();
  const torch::Tensor& log_p = Golden("scheduler.log_p_x_0");
  const torch::Tensor& x_t = Golden("scheduler.x_t");
  for (int64_t t : {1, 2, 50, 99}) {
    torch::Tensor out = QPosterior(s, log_p, x_t, torch::full({x_t.size(0)}, t, torch::kInt64));
    const std::string name = "scheduler.q_posterior.t" + std::to_string(t);
    EXPECT_TRUE(AllClose(name, out, Golden(name)));
  }
}

TEST(QPosteriorTest, PerSampleTimestepsEqualSeparateCalls) {
  VQD_REQUIRE_PARITY();
  VqSchedule s = TinySchedule();
  const torch::Tensor& log_p = Golden("scheduler.log_p_x_0");
  const torch::Tensor& x_t = Golden("scheduler.x_t");
  torch::Tensor mixed = QPosterior(s, log_p, x_t, torch::tensor({1, 99}, torch::kInt64));
  EXPECT_TRUE(AllClose("sample 0 at t=1", mixed[0], Golden("scheduler.q_posterior.t1")[0]));
  EXPECT_TRUE(AllClose("sample 1 at t=99", mixed[1], Golden("scheduler.q_posterior.t99")[1]));
}

TEST(SchedulerStepTest, GumbelSamplesMatchDiffusersWithSeededGenerator) {
  VQD_REQUIRE_PARITY();
  VqSchedule s = TinySchedule();
  const torch::Tensor& log_p = Golden("scheduler.log_p_x_0");
  const torch::Tensor& x_t = Golden("scheduler.x_t");
  for (int64_t t : {0, 1, 50, 99}) {
    torch::Generator gen = MakeGenerator(torch::kCPU, static_cast<uint64_t>(100 + t));
    torch::Tensor logits =
        t == 0 ? log_p : QPosterior(s, log_p, x_t, torch::full({x_t.size(0)}, t, torch::kInt64));
    torch::Tensor sample = GumbelArgmax(logits, DrawUniform(gen, logits.sizes(), torch::kCPU));
    const std::string name = "scheduler.step.t" + std::to_string(t) + ".seed" + std::to_string(100 + t);
    EXPECT_TRUE(torch::equal(sample, Golden(name))) << name;
  }
}

TEST(TruncationTest, MatchesDiffusersAtEachRate) {
  VQD_REQUIRE_PARITY();
  const torch::Tensor& log_p = Golden("scheduler.log_p_x_0");
  for (const auto& [rate, name] : std::vector<std::pair<float, std::string>>{
           {0.5f, "truncate.rate0.5"}, {0.86f, "truncate.rate0.86"}, {1.0f, "truncate.rate1.0"}}) {
    torch::Tensor out = Truncate(log_p, torch::full({log_p.size(0)}, rate));
    EXPECT_TRUE(AllClose(name, out, Golden(name), 0)) << name;
  }
}

TEST(TruncationTest, KeepsSmallestPrefixReachingRate) {
  // One position, probabilities 0.5, 0.3, 0.15, 0.05.
  torch::Tensor p = torch::tensor({0.15f, 0.5f, 0.05f, 0.3f}).log().view({1, 4, 1});
  auto kept = [&](float rate) { return Truncate(p, torch::tensor({rate})).isfinite().view({4}); };
  EXPECT_TRUE(torch::equal(kept(0.4f), torch::tensor({false, true, false, false})));   // top-1 reaches 0.4
  EXPECT_TRUE(torch::equal(kept(0.6f), torch::tensor({false, true, false, true})));    // 0.5 < 0.6: the next one too
  EXPECT_TRUE(torch::equal(kept(0.01f), torch::tensor({false, true, false, false})));  // always the top one
  EXPECT_TRUE(torch::equal(kept(0.9f), torch::tensor({true, true, false, true})));
}

TEST(GeneratorTest, CpuRandMatchesPyTorchStreams) {
  VQD_REQUIRE_PARITY();
  torch::Generator g0 = MakeGenerator(torch::kCPU, 0);
  EXPECT_TRUE(torch::equal(DrawUniform(g0, {3, 17, 11}, torch::kCPU), Golden("rand.seed0.shape_3x17x11")));
  torch::Generator g123 = MakeGenerator(torch::kCPU, 123);
  EXPECT_TRUE(torch::equal(DrawUniform(g123, {2, 16, 64}, torch::kCPU), Golden("rand.seed123.shape_2x16x64")));
}

TEST(GeneratorTest, GeneratorsAreIndependentOfEachOtherAndOfTheGlobalOne) {
  torch::Generator a = MakeGenerator(torch::kCPU, 7);
  torch::Tensor first = DrawUniform(a, {4}, torch::kCPU);
  torch::manual_seed(99);
  torch::rand({1000});
  torch::Generator b = MakeGenerator(torch::kCPU, 7);
  EXPECT_TRUE(torch::equal(first, DrawUniform(b, {4}, torch::kCPU)));
}

TEST(GumbelTest, ArgmaxPicksCertainClass) {
  // A class with log-probability 0 against -70 everywhere else wins for any uniform.
  torch::Tensor logits = torch::full({1, 5, 3}, -70.0f);
  logits.index_put_({0, 2, torch::indexing::Slice()}, 0.0f);
  torch::Generator g = MakeGenerator(torch::kCPU, 3);
  torch::Tensor out = GumbelArgmax(logits, DrawUniform(g, logits.sizes(), torch::kCPU));
  EXPECT_TRUE(torch::equal(out, torch::full({1, 3}, 2, torch::kInt64)));
}

}  // namespace
}  // namespace vqd::diffusion
