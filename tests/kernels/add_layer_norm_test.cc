// AddAdaLayerNorm / AddLayerNorm: residual add, LayerNorm and modulation in one pass.
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernel_test_util.h"
#include "nn/kernels/add_layer_norm.h"
#include "nn/kernels/kernel_math.h"

namespace vqd::nn::kernels {
namespace {

using testing::CloseTo;
using testing::ToleranceFor;

struct Inputs {
  torch::Tensor x, residual, table, weight, bias, t;
};

// Samples of `tokens` rows each, `d` wide, in `dtype`; t one timestep per sample.
Inputs MakeInputs(int64_t samples, int64_t tokens, int64_t d, torch::Dtype dtype, uint64_t seed) {
  torch::manual_seed(seed);
  Inputs in;
  in.x = torch::randn({samples, tokens, d}).to(dtype);
  in.residual = (torch::randn({samples, tokens, d}) * 2 + 0.5).to(dtype);
  in.table = (torch::randn({7, 2 * d}) * 0.3).to(dtype);
  in.weight = (torch::randn({d}) * 0.5 + 1).to(dtype);
  in.bias = (torch::randn({d}) * 0.1).to(dtype);
  in.t = torch::randint(0, 7, {samples}, torch::kInt64);
  return in;
}

// float64 reference: the residual add rounded to the storage dtype (as the kernel stores it), then
// the normalisation and modulation in float64.
torch::Tensor Fp64Reference(const Inputs& in, bool add, NormModulation m, double eps, torch::Tensor* residual_out) {
  const torch::Dtype dtype = in.residual.scalar_type();
  torch::Tensor r = in.residual.to(torch::kFloat64);
  if (add) r = (r + in.x.to(torch::kFloat64)).to(dtype).to(torch::kFloat64);
  *residual_out = r;
  const int64_t d = r.size(-1);
  torch::Tensor y = torch::layer_norm(r, {d}, {}, {}, eps);
  if (m == NormModulation::kAda) {
    torch::Tensor mod = in.table.to(torch::kFloat64).index_select(0, in.t.to(torch::kCPU));
    y = y * (1 + mod.narrow(1, 0, d).unsqueeze(1)) + mod.narrow(1, d, d).unsqueeze(1);
  } else if (m == NormModulation::kAffine) {
    y = y * in.weight.to(torch::kFloat64) + in.bias.to(torch::kFloat64);
  }
  return y;
}

// The kernel's arithmetic (kernel_math.h), run serially on the CPU.
template <typename T>
torch::Tensor Emulate(const Inputs& in, bool add, NormModulation m, double eps, torch::Tensor& residual) {
  torch::Tensor out = torch::empty_like(residual);
  torch::Tensor x = in.x.contiguous();
  AddNormArgs<T> a;
  a.x = add ? x.data_ptr<T>() : nullptr;
  a.residual = residual.data_ptr<T>();
  a.out = out.data_ptr<T>();
  a.weight = m == NormModulation::kAda ? in.table.data_ptr<T>() : in.weight.data_ptr<T>();
  a.bias = in.bias.data_ptr<T>();
  a.t = in.t.data_ptr<int64_t>();
  a.rows_per_sample = residual.size(1);
  a.d = residual.size(-1);
  a.eps = static_cast<float>(eps);
  a.modulation = m;
  std::vector<float> cache(static_cast<size_t>(a.d));
  for (int64_t row = 0; row < residual.numel() / a.d; ++row) AddNormRowSerial(a, row, cache.data());
  return out;
}

torch::Tensor EmulateAny(const Inputs& in, bool add, NormModulation m, double eps, torch::Tensor& residual) {
  switch (residual.scalar_type()) {
    case torch::kFloat32: return Emulate<float>(in, add, m, eps, residual);
    case torch::kBFloat16: return Emulate<c10::BFloat16>(in, add, m, eps, residual);
    case torch::kFloat16: return Emulate<c10::Half>(in, add, m, eps, residual);
    default: TORCH_CHECK(false, "unexpected dtype");
  }
}

struct Shape {
  int64_t samples, tokens, d;
};
const std::vector<Shape>& Shapes() {
  static const std::vector<Shape> shapes = {{1, 5, 32}, {2, 3, 1408}, {3, 4, 32}, {64, 1, 32}, {2, 2, 1408}};
  return shapes;
}

TEST(AddLayerNormKernelTest, CpuArithmeticMatchesFloat64Reference) {
  for (torch::Dtype dtype : testing::KernelDtypes()) {
    for (const Shape& s : Shapes()) {
      for (NormModulation m : {NormModulation::kAda, NormModulation::kAffine, NormModulation::kNone}) {
        for (bool add : {true, false}) {
          SCOPED_TRACE(::testing::Message() << dtype << " [" << s.samples << ", " << s.tokens << ", " << s.d
                                            << "] modulation " << static_cast<int>(m) << " add " << add);
          const Inputs in = MakeInputs(s.samples, s.tokens, s.d, dtype, 7 + s.d);
          torch::Tensor expected_residual;
          const torch::Tensor expected = Fp64Reference(in, add, m, 1e-5, &expected_residual);
          torch::Tensor residual = in.residual.clone();
          const torch::Tensor out = EmulateAny(in, add, m, 1e-5, residual);
          EXPECT_TRUE(CloseTo("output", out, expected, ToleranceFor(dtype)));
          EXPECT_TRUE(CloseTo("residual", residual, expected_residual, ToleranceFor(dtype)));
        }
      }
    }
  }
}

TEST(AddLayerNormKernelTest, CpuReferenceIsTheModulesComputation) {
  // The CPU dispatch (the fast path on a CPU) is the libtorch reference: the same ops as
  // AdaLayerNorm::forward and LayerNorm::forward after an in-place residual add.
  const Inputs in = MakeInputs(2, 3, 32, torch::kFloat32, 3);
  torch::Tensor residual = in.residual.clone();
  torch::Tensor out = AddAdaLayerNorm(in.x, residual, in.table, in.t, 1e-5);
  torch::Tensor expected_residual = in.residual + in.x;
  EXPECT_TRUE(torch::equal(residual, expected_residual));
  torch::Tensor mod = in.table.index_select(0, in.t);
  torch::Tensor expected = torch::layer_norm(expected_residual, {32}, {}, {}, 1e-5) *
                               (1 + mod.narrow(1, 0, 32).unsqueeze(1)) +
                           mod.narrow(1, 32, 32).unsqueeze(1);
  EXPECT_TRUE(torch::equal(out, expected));
  torch::Tensor residual2 = in.residual.clone();
  EXPECT_TRUE(torch::equal(AddLayerNorm({}, residual2, in.weight, in.bias, 1e-5),
                           torch::layer_norm(in.residual, {32}, in.weight, in.bias, 1e-5)));
}

TEST(AddLayerNormKernelTest, CudaKernelMatchesReference) {
  VQD_REQUIRE_CUDA("AddAdaLayerNorm/AddLayerNorm kernel");
  const torch::Device cuda(torch::kCUDA, 0);
  for (torch::Dtype dtype : testing::KernelDtypes()) {
    for (const Shape& s : Shapes()) {
      for (NormModulation m : {NormModulation::kAda, NormModulation::kAffine}) {
        for (bool add : {true, false}) {
          SCOPED_TRACE(::testing::Message() << dtype << " [" << s.samples << ", " << s.tokens << ", " << s.d
                                            << "] modulation " << static_cast<int>(m) << " add " << add);
          Inputs in = MakeInputs(s.samples, s.tokens, s.d, dtype, 11 + s.d);
          if (add) in.x[0][0][1] = std::numeric_limits<float>::infinity();  // that row turns NaN in both
          torch::Tensor expected_residual;
          const torch::Tensor expected = Fp64Reference(in, add, m, 1e-5, &expected_residual);
          // The residual inside a larger buffer whose outer rows are sentinels.
          torch::Tensor buffer = torch::full({s.samples + 2, s.tokens, s.d}, 7.0, torch::TensorOptions().dtype(dtype).device(cuda));
          torch::Tensor residual = buffer.narrow(0, 1, s.samples);
          residual.copy_(in.residual);
          // x strided: a transposed copy viewed back.
          torch::Tensor x = add ? in.x.to(cuda).transpose(0, 1).contiguous().transpose(0, 1) : torch::Tensor();
          torch::Tensor out = m == NormModulation::kAda
                                  ? AddAdaLayerNorm(x, residual, in.table.to(cuda), in.t.to(cuda), 1e-5)
                                  : AddLayerNorm(x, residual, in.weight.to(cuda), in.bias.to(cuda), 1e-5);
          EXPECT_TRUE(CloseTo("output", out, expected, ToleranceFor(dtype)));
          EXPECT_TRUE(CloseTo("residual", residual, expected_residual, ToleranceFor(dtype)));
          EXPECT_TRUE(buffer[0].eq(7.0).all().item<bool>()) << "wrote before the residual";
          EXPECT_TRUE(buffer[s.samples + 1].eq(7.0).all().item<bool>()) << "wrote after the residual";
        }
      }
    }
  }
  // Too wide a row is refused, naming the limit.
  torch::Tensor wide = torch::zeros({1, 1, kMaxNormWidth + 1}, torch::TensorOptions().device(cuda));
  EXPECT_THROW(AddLayerNorm({}, wide, {}, {}, 1e-5), c10::Error);
  // So is a dtype outside the list.
  torch::Tensor doubles = torch::zeros({1, 1, 32}, torch::TensorOptions().dtype(torch::kFloat64).device(cuda));
  EXPECT_THROW(AddLayerNorm({}, doubles, {}, {}, 1e-5), c10::Error);
}

}  // namespace
}  // namespace vqd::nn::kernels
