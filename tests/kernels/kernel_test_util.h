// Shared by the kernel tests: per-dtype tolerances (one place, as vLLM's allclose_default) and
// the loud skip of the GPU halves.
#pragma once

#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace vqd::testing {

struct Tolerance {
  double atol;
  double rtol;
};

// A kernel computes in float32 from its storage dtype and rounds once; the reference is float64.
inline Tolerance ToleranceFor(torch::Dtype dtype) {
  if (dtype == torch::kBFloat16) return {1e-2, 1e-2};
  if (dtype == torch::kFloat16) return {2e-3, 2e-3};
  return {2e-5, 2e-5};
}

inline const std::vector<torch::Dtype>& KernelDtypes() {
  static const std::vector<torch::Dtype> dtypes = {torch::kFloat32, torch::kBFloat16, torch::kFloat16};
  return dtypes;
}

// |actual - expected| <= atol + rtol |expected| everywhere, NaN where expected is NaN, equal infinities.
inline ::testing::AssertionResult CloseTo(const std::string& name, const torch::Tensor& actual,
                                          const torch::Tensor& expected, Tolerance tol) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << name << ": shape " << actual.sizes() << " vs " << expected.sizes();
  }
  const torch::Tensor a = actual.to(torch::kCPU).to(torch::kFloat64);
  const torch::Tensor e = expected.to(torch::kCPU).to(torch::kFloat64);
  const torch::Tensor nan_mismatch = a.isnan().ne(e.isnan());
  if (nan_mismatch.any().item<bool>()) {
    return ::testing::AssertionFailure() << name << ": NaN where the reference has none, or the reverse ("
                                         << nan_mismatch.sum().item<int64_t>() << " elements)";
  }
  const torch::Tensor finite = e.isfinite();
  const torch::Tensor inf_mismatch = e.isinf().logical_and(a.ne(e));
  if (inf_mismatch.any().item<bool>()) {
    return ::testing::AssertionFailure() << name << ": an infinity of the reference is not matched";
  }
  const torch::Tensor err = (a - e).abs().masked_fill(finite.logical_not(), 0);
  const torch::Tensor bound = e.abs().masked_fill(finite.logical_not(), 0) * tol.rtol + tol.atol;
  const torch::Tensor bad = err.gt(bound);
  if (bad.any().item<bool>()) {
    return ::testing::AssertionFailure() << name << ": " << bad.sum().item<int64_t>() << " of " << a.numel()
                                         << " elements off, max error " << err.max().item<double>();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace vqd::testing

// Opens the GPU half of a test: VQD_REQUIRE_CUDA("AddAdaLayerNorm kernel").
#define VQD_REQUIRE_CUDA(what)                                                                          \
  do {                                                                                                  \
    if (!torch::cuda::is_available()) {                                                                 \
      std::fprintf(stderr, "*** no CUDA device: %s NOT tested (only its CPU half ran) ***\n", what);     \
      GTEST_SKIP() << "no CUDA device: " << what << " NOT tested";                                     \
    }                                                                                                   \
  } while (0)
