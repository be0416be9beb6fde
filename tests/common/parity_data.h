// Access to the diffusers reference data in ../shared/parity for the parity tests.
#pragma once

#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "io/tensor_map.h"

namespace vqd::testing {

// The parity folder (VQD_PARITY_DIR from the environment, else the build's default), or nullopt
// when it does not exist.
std::optional<std::string> ParityDir();

// Skips the current test with a loud message when the parity data is missing.
#define VQD_REQUIRE_PARITY()                                                                      \
  do {                                                                                            \
    if (!::vqd::testing::ParityDir()) {                                                           \
      std::fprintf(stderr, "\n*** PARITY DATA MISSING: set VQD_PARITY_DIR or provide "            \
                           "../shared/parity; this parity test is SKIPPED, not passed ***\n\n"); \
      GTEST_SKIP() << "parity data missing (../shared/parity)";                                    \
    }                                                                                             \
  } while (0)

// tiny/goldens.safetensors (CPU) or tiny/goldens_cuda_h100.safetensors, loaded once.
const io::TensorMap& Goldens();
const io::TensorMap& CudaGoldens();
const torch::Tensor& Golden(const std::string& name);

// <parity>/tiny/<sub>, e.g. TinyPath("model").
std::string TinyPath(const std::string& sub);

// Max absolute difference, for messages.
double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b);

// Asserts shape equality and |a - b| <= atol everywhere (no NaN), naming the tensor. With
// VQD_PARITY_VERBOSE set, prints the largest difference of every comparison.
::testing::AssertionResult AllClose(const std::string& name, const torch::Tensor& actual, const torch::Tensor& expected,
                                    double atol = 1e-4);

}  // namespace vqd::testing
