// The VQ-Diffusion scheduler pieces (schedules, posterior, Gumbel sampling, truncation, RNG)
// against diffusers' VQDiffusionScheduler on the tiny model's 17 classes, plus the ITHQ reference
// values of the spec's appendix A.
#include <numeric>

#include <gtest/gtest.h>

#include "common/parity_data.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/prior_sampling.h"
#include "diffusion/q_posterior.h"
#include "diffusion/sampling_plan.h"
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

// The official sample_fast (spec 9.3): speed 2 visits 99, 97, ..., 3, 1, 0, each t > 1 stepping
// with the posterior at t - 1.
TEST(SamplingPlanTest, StrideTwoIsTheOfficialSpeedTwoList) {
  const std::vector<PlannedStep> plan = StridedPlan(100, 2);
  ASSERT_EQ(plan.size(), 51u);
  for (size_t i = 0; i < 50; ++i) {
    EXPECT_EQ(plan[i].timestep, 99 - 2 * static_cast<int64_t>(i));
    EXPECT_EQ(plan[i].posterior_timestep, plan[i].timestep > 1 ? plan[i].timestep - 1 : plan[i].timestep);
  }
  EXPECT_EQ(plan[49].timestep, 1);
  EXPECT_EQ(plan[49].posterior_timestep, 1);  // t <= skip: its own posterior
  EXPECT_EQ(plan[50].timestep, 0);
  EXPECT_EQ(plan[50].posterior_timestep, 0);
}

TEST(SamplingPlanTest, StrideFourEndsWithThreeThenZero) {
  const std::vector<PlannedStep> plan = StridedPlan(100, 4);
  ASSERT_EQ(plan.size(), 26u);
  EXPECT_EQ(plan[0].timestep, 99);
  EXPECT_EQ(plan[0].posterior_timestep, 96);  // samples the state of t = 95, the next visit
  EXPECT_EQ(plan[1].timestep, 95);
  EXPECT_EQ(plan[24].timestep, 3);
  EXPECT_EQ(plan[24].posterior_timestep, 3);
  EXPECT_EQ(plan[25].timestep, 0);
}

TEST(SamplingPlanTest, StrideThreeReachesZeroWithoutAnExtraVisit) {
  const std::vector<PlannedStep> plan = StridedPlan(100, 3);  // 99 = 33 * 3
  ASSERT_EQ(plan.size(), 34u);
  EXPECT_EQ(plan[32].timestep, 3);
  EXPECT_EQ(plan[32].posterior_timestep, 1);
  EXPECT_EQ(plan[33].timestep, 0);
  EXPECT_EQ(plan[33].posterior_timestep, 0);
}

TEST(SamplingPlanTest, StrideOneIsDiffusersPlanAndCountsMatch) {
  const std::vector<PlannedStep> one = StridedPlan(100, 1), diffusers = ContiguousPlan(100);
  ASSERT_EQ(one.size(), diffusers.size());
  for (size_t i = 0; i < one.size(); ++i) {
    EXPECT_EQ(one[i].timestep, diffusers[i].timestep);
    EXPECT_EQ(one[i].posterior_timestep, diffusers[i].posterior_timestep);
    EXPECT_EQ(diffusers[i].timestep, 99 - static_cast<int64_t>(i));
  }
  for (int64_t T : {1, 2, 10, 16, 100}) {
    for (int64_t s = 1; s <= T; ++s) {
      EXPECT_EQ(static_cast<int64_t>(StridedPlan(T, s).size()), StridedStepCount(T, s)) << T << " " << s;
      EXPECT_EQ(StridedPlan(T, s).back().timestep, 0);
    }
  }
}

// Spec 9.4: for ITHQ (T = 100, 1024 tokens) the official counts, unchanged.
TEST(PriorScheduleTest, IthqCountsAreTheOfficialList) {
  const std::vector<int64_t> counts = PriorUnmaskSchedule(100, 1024);
  ASSERT_EQ(counts.size(), 100u);
  std::vector<int64_t> official = {0, 10};
  for (int i = 0; i < 32; ++i) official.insert(official.end(), {11, 10, 10});
  official.insert(official.end(), {11, 11});
  EXPECT_EQ(counts, official);
}

TEST(PriorScheduleTest, OtherGridsAndSchedulesAddUpToTheGrid) {
  for (int64_t T : {2, 10, 16, 100}) {
    for (int64_t n : {1, 64, 256, 1000}) {
      const std::vector<int64_t> counts = PriorUnmaskSchedule(T, n);
      EXPECT_EQ(counts[0], 0);
      EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), n) << T << " " << n;
    }
  }
  // Any plan, strided or cut short, unmasks the whole grid by its last visit with t > 0.
  for (auto plan : {StridedPlan(100, 4), StridedPlan(100, 3), ContiguousPlan(10), ContiguousPlan(100)}) {
    AssignUnmaskCounts(plan, 100, 64);
    int64_t total = 0;
    for (const PlannedStep& step : plan) total += step.unmask_count;
    EXPECT_EQ(total, 64);
    EXPECT_EQ(plan.back().unmask_count, 0);  // t = 0 samples every position from p(x_0)
  }
}

// Half the positions predict one code with probability ~1, half are flat over K codes.
torch::Tensor ConfidentAndFlat(int64_t n, int64_t K, int64_t N) {
  torch::Tensor logp = torch::full({n, K, N}, -std::log(static_cast<float>(K)));
  for (int64_t p = 0; p < N; p += 2) {
    logp.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), p}, -70.0f);
    logp.index_put_({torch::indexing::Slice(), p % K, p}, 0.0f);
  }
  return logp;
}

TEST(PriorUnmaskStepTest, UnmasksExactlyTheCountAndPurityPicksConfidentPositionsFirst) {
  // Flat positions have purity 1/K = 5e-5 against 1: a flat one going first is a 1e-4 event.
  const int64_t K = 20000, N = 16;
  const torch::Tensor logp = ConfidentAndFlat(2, K, N);
  torch::Tensor tokens = torch::full({2, N}, K, torch::kInt64);
  tokens.index_put_({0, 0}, 5);  // already unmasked: never touched again
  int64_t flat_picked_uniform = 0;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    torch::Generator g = MakeGenerator(torch::kCPU, seed);
    const torch::Tensor out = PriorUnmaskStep(logp, tokens, K, PriorRule::kPurity, 1.0f, 4, g);
    EXPECT_EQ(out[0][0].item<int64_t>(), 5);
    for (int64_t i = 0; i < 2; ++i) {
      const torch::Tensor revealed = tokens[i].eq(K).logical_and(out[i].ne(K));
      EXPECT_EQ(revealed.sum().item<int64_t>(), 4) << "image " << i << " seed " << seed;
      for (int64_t p = 1; p < N; p += 2) EXPECT_FALSE(revealed[p].item<bool>()) << "flat position " << p << " went first";
      // A confident position takes its predicted code.
      for (int64_t p = 0; p < N; p += 2) {
        if (revealed[p].item<bool>()) EXPECT_EQ(out[i][p].item<int64_t>(), p % K);
      }
    }
    torch::Generator gu = MakeGenerator(torch::kCPU, seed);
    const torch::Tensor uniform = PriorUnmaskStep(logp, tokens, K, PriorRule::kUniform, 0.0f, 4, gu);
    EXPECT_EQ(tokens[1].eq(K).logical_and(uniform[1].ne(K)).sum().item<int64_t>(), 4);
    for (int64_t p = 1; p < N; p += 2) flat_picked_uniform += uniform[1][p].item<int64_t>() != K;
  }
  EXPECT_GT(flat_picked_uniform, 0) << "uniform positions never chose a flat position: the weights are not uniform";
}

TEST(PriorUnmaskStepTest, NeverUnmasksMoreThanIsMasked) {
  const int64_t K = 16, N = 8;
  torch::Tensor tokens = torch::full({1, N}, K, torch::kInt64);
  tokens.index_put_({0, torch::indexing::Slice(0, 6)}, 3);
  torch::Generator g = MakeGenerator(torch::kCPU, 1);
  const torch::Tensor out = PriorUnmaskStep(torch::full({1, K, N}, -std::log(16.0f)), tokens, K, PriorRule::kPurity,
                                            2.0f, 100, g);
  EXPECT_EQ(out.eq(K).sum().item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(out.narrow(1, 0, 6), tokens.narrow(1, 0, 6)));
}

}  // namespace
}  // namespace vqd::diffusion
