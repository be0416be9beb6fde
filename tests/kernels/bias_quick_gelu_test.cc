// BiasQuickGeluInPlace: the feed-forward's bias and quick GELU in one pass.
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernel_test_util.h"
#include "nn/kernels/bias_quick_gelu.h"
#include "nn/kernels/kernel_math.h"

namespace vqd::nn::kernels {
namespace {

using testing::CloseTo;
using testing::ToleranceFor;

torch::Tensor Fp64Reference(const torch::Tensor& x, const torch::Tensor& bias) {
  torch::Tensor z = x.to(torch::kFloat64) + bias.to(torch::kFloat64);
  return z * torch::sigmoid(1.702 * z);
}

template <typename T>
torch::Tensor Emulate(const torch::Tensor& x, const torch::Tensor& bias) {
  torch::Tensor out = x.clone();
  T* data = out.data_ptr<T>();
  const T* b = bias.data_ptr<T>();
  const int64_t width = x.size(-1);
  for (int64_t i = 0; i < out.numel(); ++i) data[i] = BiasQuickGelu(data[i], b[i % width]);
  return out;
}

torch::Tensor EmulateAny(const torch::Tensor& x, const torch::Tensor& bias) {
  switch (x.scalar_type()) {
    case torch::kFloat32: return Emulate<float>(x, bias);
    case torch::kBFloat16: return Emulate<c10::BFloat16>(x, bias);
    case torch::kFloat16: return Emulate<c10::Half>(x, bias);
    default: TORCH_CHECK(false, "unexpected dtype");
  }
}

const std::vector<std::vector<int64_t>>& Shapes() {
  static const std::vector<std::vector<int64_t>> shapes = {{1, 3, 128}, {2, 7, 5632}, {64, 1, 32}, {3, 83, 96}};
  return shapes;
}

TEST(BiasQuickGeluKernelTest, CpuArithmeticMatchesFloat64Reference) {
  for (torch::Dtype dtype : testing::KernelDtypes()) {
    for (const auto& shape : Shapes()) {
      SCOPED_TRACE(::testing::Message() << dtype << " " << torch::IntArrayRef(shape));
      torch::manual_seed(shape.back());
      const torch::Tensor x = (torch::randn(shape) * 3).to(dtype);
      const torch::Tensor bias = torch::randn({shape.back()}).to(dtype);
      EXPECT_TRUE(CloseTo("quick gelu", EmulateAny(x, bias), Fp64Reference(x, bias), ToleranceFor(dtype)));
    }
  }
}

TEST(BiasQuickGeluKernelTest, CpuDispatchIsTheReference) {
  const torch::Tensor x = torch::randn({2, 3, 16});
  const torch::Tensor bias = torch::randn({16});
  const torch::Tensor expected = BiasQuickGeluReference(x, bias);
  torch::Tensor in_place = x.clone();
  const torch::Tensor out = BiasQuickGeluInPlace(in_place, bias);
  EXPECT_TRUE(torch::equal(out, expected));
  EXPECT_TRUE(torch::equal(in_place, expected)) << "not in place";
}

TEST(BiasQuickGeluKernelTest, CudaKernelMatchesReference) {
  VQD_REQUIRE_CUDA("BiasQuickGelu kernel");
  const torch::Device cuda(torch::kCUDA, 0);
  for (torch::Dtype dtype : testing::KernelDtypes()) {
    for (const auto& shape : Shapes()) {
      SCOPED_TRACE(::testing::Message() << dtype << " " << torch::IntArrayRef(shape));
      torch::manual_seed(shape.back() + 1);
      torch::Tensor x = (torch::randn(shape) * 3).to(dtype);
      x.view(-1)[0] = std::numeric_limits<float>::infinity();   // inf * sigmoid(inf) = inf
      x.view(-1)[1] = -std::numeric_limits<float>::infinity();  // -inf * 0 = NaN, as the reference
      const torch::Tensor bias = torch::randn({shape.back()}).to(dtype);
      torch::Tensor on_device = x.to(cuda);
      const torch::Tensor out = BiasQuickGeluInPlace(on_device, bias.to(cuda));
      EXPECT_EQ(out.data_ptr(), on_device.data_ptr()) << "not in place";
      EXPECT_TRUE(CloseTo("quick gelu", out, Fp64Reference(x, bias), ToleranceFor(dtype)));
    }
  }
  torch::Tensor x = torch::zeros({2, 8}, torch::TensorOptions().device(cuda));
  EXPECT_THROW(BiasQuickGeluInPlace(x, torch::zeros({7}, x.options())), c10::Error);  // bias of the wrong width
}

}  // namespace
}  // namespace vqd::nn::kernels
