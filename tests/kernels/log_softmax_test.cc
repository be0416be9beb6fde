// LogSoftmaxClasses: the output head's log-softmax, token-major, into float32.
#include <limits>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernel_test_util.h"
#include "nn/kernels/kernel_math.h"
#include "nn/kernels/log_softmax.h"

namespace vqd::nn::kernels {
namespace {

using testing::CloseTo;

// diffusers' own computation: float64 log_softmax over the classes of [R, K, N].
torch::Tensor DiffusersReference(const torch::Tensor& token_major) {
  return torch::log_softmax(token_major.permute({0, 2, 1}).to(torch::kFloat64), 1).to(torch::kFloat32);
}

template <typename T>
torch::Tensor Emulate(const torch::Tensor& logits) {
  torch::Tensor in = logits.contiguous();
  torch::Tensor out = torch::empty(in.sizes(), torch::kFloat32);
  const int64_t k = in.size(-1);
  for (int64_t row = 0; row < in.numel() / k; ++row) {
    LogSoftmaxRowSerial(in.data_ptr<T>() + row * k, out.data_ptr<float>() + row * k, k);
  }
  return out;
}

torch::Tensor EmulateAny(const torch::Tensor& logits) {
  switch (logits.scalar_type()) {
    case torch::kFloat32: return Emulate<float>(logits);
    case torch::kBFloat16: return Emulate<c10::BFloat16>(logits);
    case torch::kFloat16: return Emulate<c10::Half>(logits);
    default: TORCH_CHECK(false, "unexpected dtype");
  }
}

const std::vector<std::vector<int64_t>>& Shapes() {  // [R, N, K]
  static const std::vector<std::vector<int64_t>> shapes = {{1, 4, 16}, {2, 7, 4096}, {3, 5, 1024}, {64, 1, 33}};
  return shapes;
}

// Float64 sums and subtraction, one rounding to float32: within a float32 rounding of diffusers'.
const testing::Tolerance kTolerance{1e-5, 1e-6};

TEST(LogSoftmaxKernelTest, CpuArithmeticMatchesDiffusersFloat64) {
  for (torch::Dtype dtype : testing::KernelDtypes()) {
    for (const auto& shape : Shapes()) {
      SCOPED_TRACE(::testing::Message() << dtype << " " << torch::IntArrayRef(shape));
      torch::manual_seed(shape.back());
      const torch::Tensor logits = (torch::randn(shape) * 4).to(dtype);
      const torch::Tensor out = EmulateAny(logits);  // [R, N, K]
      EXPECT_TRUE(CloseTo("log_softmax", out.permute({0, 2, 1}), DiffusersReference(logits), kTolerance));
    }
  }
}

TEST(LogSoftmaxKernelTest, CpuDispatchWritesIntoOut) {
  const torch::Tensor logits = torch::randn({2, 3, 16});
  torch::Tensor out = torch::empty({2, 3, 16});
  const torch::Tensor result = LogSoftmaxClasses(logits, out);
  EXPECT_EQ(result.data_ptr(), out.data_ptr());
  EXPECT_TRUE(torch::equal(out, LogSoftmaxClassesReference(logits)));
  EXPECT_THROW(LogSoftmaxClasses(logits, torch::empty({2, 3, 15})), c10::Error);
}

TEST(LogSoftmaxKernelTest, CudaKernelMatchesReference) {
  VQD_REQUIRE_CUDA("LogSoftmaxClasses kernel");
  const torch::Device cuda(torch::kCUDA, 0);
  for (torch::Dtype dtype : testing::KernelDtypes()) {
    for (const auto& shape : Shapes()) {
      SCOPED_TRACE(::testing::Message() << dtype << " " << torch::IntArrayRef(shape));
      torch::manual_seed(shape.back() + 3);
      torch::Tensor logits = (torch::randn(shape) * 4).to(dtype);
      logits[0][0][0] = -std::numeric_limits<float>::infinity();  // a dropped class stays -inf
      const torch::Tensor out = LogSoftmaxClasses(logits.to(cuda));
      EXPECT_EQ(out.scalar_type(), torch::kFloat32);
      EXPECT_TRUE(CloseTo("log_softmax", out.permute({0, 2, 1}), DiffusersReference(logits), kTolerance));
      // Into a slice of a static buffer, its sentinels untouched.
      torch::Tensor buffer = torch::full({shape[0] + 1, shape[1], shape[2]}, 3.0, torch::TensorOptions().device(cuda));
      LogSoftmaxClasses(logits.to(cuda), buffer.narrow(0, 0, shape[0]));
      EXPECT_TRUE(torch::equal(buffer.narrow(0, 0, shape[0]), out));
      EXPECT_TRUE(buffer[shape[0]].eq(3.0).all().item<bool>());
    }
  }
}

}  // namespace
}  // namespace vqd::nn::kernels
