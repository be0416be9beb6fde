// SamplePosterior / SampleX0: the posterior and its Gumbel-max draw in one pass per column.
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "diffusion/gumbel_sampler.h"
#include "diffusion/kernels/posterior_gumbel.h"
#include "diffusion/kernels/posterior_math.h"
#include "diffusion/q_posterior.h"
#include "kernel_test_util.h"

namespace vqd::diffusion {
namespace {

using testing::CloseTo;

struct Case {
  int64_t batch, classes, positions;
  bool token_major;  // log p(x_0) as a [B, N, K] tensor viewed as [B, K, N], as the fast path makes it
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {{1, 16, 8, false}, {3, 16, 9, true}, {2, 1024, 16, true},
                                          {2, 4096, 6, true}, {64, 16, 1, false}};
  return cases;
}

struct Inputs {
  VqSchedule schedule;
  torch::Tensor log_p_x_0, x_t, t, uniform, uniform_x0;
};

Inputs MakeInputs(const Case& c, uint64_t seed) {
  Inputs in;
  VqScheduleConfig config;
  config.num_vec_classes = c.classes + 1;
  in.schedule = VqSchedule::Build(config);
  torch::manual_seed(seed);
  // Peaked, truncated and clamped as DenoiseStep hands it over: some classes at the -70 floor.
  torch::Tensor logits = torch::randn({c.batch, c.positions, c.classes}) * 3;
  torch::Tensor log_p = torch::log_softmax(logits, -1);
  log_p = log_p.masked_fill(torch::rand(log_p.sizes()) < 0.2, -70.0);
  in.log_p_x_0 = c.token_major ? log_p.permute({0, 2, 1}) : log_p.permute({0, 2, 1}).contiguous();
  in.x_t = torch::randint(0, c.classes + 1, {c.batch, c.positions}, torch::kInt64);
  in.x_t = torch::where(torch::rand(in.x_t.sizes()) < 0.4, torch::full_like(in.x_t, c.classes), in.x_t);
  const std::vector<int64_t> steps = {1, 2, 50, 99};
  std::vector<int64_t> t;
  for (int64_t b = 0; b < c.batch; ++b) t.push_back(steps[static_cast<size_t>(b) % steps.size()]);
  in.t = torch::tensor(t, torch::kInt64);
  torch::Generator gen = MakeGenerator(torch::kCPU, seed);
  in.uniform = DrawUniform(gen, {c.batch, c.classes + 1, c.positions}, torch::kCPU);
  in.uniform_x0 = DrawUniform(gen, {c.batch, c.classes, c.positions}, torch::kCPU);
  return in;
}

// Gap between the best and second-best Gumbel score of each column: [B, N].
torch::Tensor TopTwoMargin(const torch::Tensor& logits, const torch::Tensor& uniform) {
  torch::Tensor scores = -torch::log(-torch::log(uniform + 1e-30) + 1e-30) + logits;
  torch::Tensor top = std::get<0>(scores.topk(2, 1));
  return top.select(1, 0) - top.select(1, 1);
}

// Ids equal wherever the reference's top two are more than 1e-4 apart; prints the rest.
void ExpectSameDraws(const std::string& label, const torch::Tensor& ids, const torch::Tensor& expected,
                     const torch::Tensor& margin) {
  const torch::Tensor differ = ids.to(torch::kCPU).ne(expected.to(torch::kCPU));
  const torch::Tensor clear = margin.to(torch::kCPU) > 1e-4;
  EXPECT_EQ(differ.logical_and(clear).sum().item<int64_t>(), 0) << label << ": a clear draw differs";
  const int64_t close_calls = differ.logical_and(clear.logical_not()).sum().item<int64_t>();
  if (close_calls > 0) std::fprintf(stderr, "%s: %lld near-tie draws differ\n", label.c_str(), static_cast<long long>(close_calls));
}

TEST(PosteriorGumbelKernelTest, CpuArithmeticMatchesQPosteriorAndGumbelArgmax) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(::testing::Message() << "[" << c.batch << ", " << c.classes << ", " << c.positions << "] token-major "
                                      << c.token_major);
    const Inputs in = MakeInputs(c, 5 + static_cast<uint64_t>(c.classes));
    const torch::Tensor reference_logits = QPosterior(in.schedule, in.log_p_x_0, in.x_t, in.t);  // [B, K + 1, N]
    const torch::Tensor reference_ids = GumbelArgmax(reference_logits, in.uniform);
    const kernels::ScheduleTables tables = TablesOf(in.schedule);
    torch::Tensor ids = torch::empty({c.batch, c.positions}, torch::kInt64);
    torch::Tensor logits = torch::empty_like(reference_logits);
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t n = 0; n < c.positions; ++n) {
        const kernels::StridedColumn x0{in.log_p_x_0.data_ptr<float>() + b * in.log_p_x_0.stride(0) +
                                            n * in.log_p_x_0.stride(2),
                                        in.log_p_x_0.stride(1)};
        const kernels::StridedColumn u{in.uniform.data_ptr<float>() + b * in.uniform.stride(0) + n, in.uniform.stride(1)};
        const kernels::PosteriorColumn col =
            kernels::MakeColumn(tables, in.t[b].item<int64_t>(), in.x_t[b][n].item<int64_t>(), c.classes);
        ids[b][n] = kernels::PosteriorArgmaxSerial(x0, u, col);
        // The logits themselves, through the same functions.
        const float shift = kernels::LseShift(kernels::PartialMaxQ(x0, col, 0, 1));
        const float lse = kernels::LseFinish(kernels::PartialExpSumQ(x0, col, shift, 0, 1), shift);
        for (int64_t k = 0; k <= c.classes; ++k) {
          const float q = k < c.classes ? kernels::PosteriorQ(x0(k), col, k) : 0.0f;
          logits[b][k][n] = kernels::PosteriorLogit(q, lse, col, k);
        }
      }
    }
    EXPECT_TRUE(CloseTo("posterior logits", logits, reference_logits, {2e-4, 1e-5}));
    ExpectSameDraws("posterior draw", ids, reference_ids, TopTwoMargin(reference_logits, in.uniform));

    // t = 0: Gumbel-max over log p(x_0) itself.
    torch::Tensor ids_x0 = torch::empty({c.batch, c.positions}, torch::kInt64);
    for (int64_t b = 0; b < c.batch; ++b) {
      for (int64_t n = 0; n < c.positions; ++n) {
        const kernels::StridedColumn x0{in.log_p_x_0.data_ptr<float>() + b * in.log_p_x_0.stride(0) +
                                            n * in.log_p_x_0.stride(2),
                                        in.log_p_x_0.stride(1)};
        const kernels::StridedColumn u{in.uniform_x0.data_ptr<float>() + b * in.uniform_x0.stride(0) + n,
                                       in.uniform_x0.stride(1)};
        ids_x0[b][n] = kernels::PartialX0Argmax(x0, u, c.classes, 0, 1).index;
      }
    }
    EXPECT_TRUE(torch::equal(ids_x0, GumbelArgmax(in.log_p_x_0, in.uniform_x0)));
  }
}

TEST(PosteriorGumbelKernelTest, CpuDispatchIsTheReference) {
  const Inputs in = MakeInputs({2, 16, 8, true}, 3);
  EXPECT_TRUE(torch::equal(SamplePosterior(in.schedule, in.log_p_x_0, in.x_t, in.t, in.uniform, /*fused=*/true),
                           GumbelArgmax(QPosterior(in.schedule, in.log_p_x_0, in.x_t, in.t), in.uniform)));
  EXPECT_TRUE(torch::equal(SampleX0(in.log_p_x_0, in.uniform_x0, true), GumbelArgmax(in.log_p_x_0, in.uniform_x0)));
}

TEST(PosteriorGumbelKernelTest, ArgmaxOrderIsPyTorchs) {
  using kernels::ArgmaxBefore;
  EXPECT_TRUE(ArgmaxBefore(1.0f, 3, 1.0f, 5));   // ties: the lower index
  EXPECT_FALSE(ArgmaxBefore(1.0f, 5, 1.0f, 3));
  EXPECT_TRUE(ArgmaxBefore(NAN, 9, 1e30f, 0));   // NaN above everything
  EXPECT_FALSE(ArgmaxBefore(1e30f, 0, NAN, 9));
  EXPECT_TRUE(ArgmaxBefore(-1.0f, 9, -INFINITY, 0));
  EXPECT_EQ(kernels::LogAddExp(-INFINITY, -INFINITY), -INFINITY);  // equal infinities pass through
  EXPECT_FLOAT_EQ(kernels::LogAddExp(-INFINITY, -3.0f), -3.0f);
}

TEST(PosteriorGumbelKernelTest, CudaKernelMatchesReference) {
  VQD_REQUIRE_CUDA("SamplePosterior/SampleX0 kernel");
  const torch::Device cuda(torch::kCUDA, 0);
  for (const Case& c : Cases()) {
    SCOPED_TRACE(::testing::Message() << "[" << c.batch << ", " << c.classes << ", " << c.positions << "] token-major "
                                      << c.token_major);
    const Inputs in = MakeInputs(c, 17 + static_cast<uint64_t>(c.classes));
    const VqSchedule schedule = in.schedule.To(cuda);
    torch::Tensor log_p = in.log_p_x_0.to(cuda);
    if (c.token_major) log_p = in.log_p_x_0.permute({0, 2, 1}).contiguous().to(cuda).permute({0, 2, 1});
    const torch::Tensor x_t = in.x_t.to(cuda), t = in.t.to(cuda), u = in.uniform.to(cuda), u0 = in.uniform_x0.to(cuda);
    const torch::Tensor reference_logits = QPosterior(schedule, log_p, x_t, t);
    const torch::Tensor ids = SamplePosterior(schedule, log_p, x_t, t, u, /*fused=*/true);
    ExpectSameDraws("posterior draw", ids, GumbelArgmax(reference_logits, u), TopTwoMargin(reference_logits, u));
    ExpectSameDraws("t = 0 draw", SampleX0(log_p, u0, true), GumbelArgmax(log_p, u0), TopTwoMargin(log_p, u0));
  }
  // Uniforms of the wrong shape are refused.
  const Inputs in = MakeInputs({1, 16, 8, false}, 1);
  EXPECT_THROW(SamplePosterior(in.schedule.To(cuda), in.log_p_x_0.to(cuda), in.x_t.to(cuda), in.t.to(cuda),
                               in.uniform_x0.to(cuda), true),
               c10::Error);
}

}  // namespace
}  // namespace vqd::diffusion
