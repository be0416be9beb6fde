// Small bridges between libtorch and the rest of the project: exceptions to statuses, readable
// shapes, and the dtype/device names the command lines and the API use.
#pragma once

#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <utility>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vqd {

// "[2, 77, 512]".
std::string ShapeString(c10::IntArrayRef shape);

// "fp32" | "fp16" | "bf16" (also accepts float32/float16/bfloat16/half).
absl::StatusOr<torch::Dtype> ParseDtype(absl::string_view name);
std::string DtypeName(torch::Dtype dtype);

// "cpu", "cuda", "cuda:1". CUDA devices must exist on this machine.
absl::StatusOr<torch::Device> ParseDevice(absl::string_view name);

// Runs `fn` and turns a libtorch (c10::Error) or standard exception into an INTERNAL status that
// names `context`. Use it at the edge of anything that calls into libtorch on behalf of a caller.
template <typename Fn>
absl::Status CatchTorch(absl::string_view context, Fn&& fn) {
  try {
    std::forward<Fn>(fn)();
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string(context) + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return absl::InternalError(std::string(context) + ": " + e.what());
  }
}

// Bytes the caching allocator of a CUDA device has handed out and holds; nullopt for the CPU or
// a build without CUDA.
struct DeviceMemory {
  int64_t allocated_bytes = 0;
  int64_t reserved_bytes = 0;
  int64_t peak_allocated_bytes = 0;
};
std::optional<DeviceMemory> QueryDeviceMemory(const torch::Device& device);
void ResetPeakDeviceMemory(const torch::Device& device);

// Sizes libtorch's intra-op (OpenMP) thread pool to the CPUs this process may use
// (AvailableCpus: affinity mask and cgroup quota) unless OMP_NUM_THREADS is set, and returns the
// size in effect. libtorch's own default counts physical cores as its cpuinfo sees them, which on
// some VMs is 1 of 2 (the CPU pipeline then ran 15-20% slower). The BLAS (BLIS) stays at one
// thread: BLIS threads inside libtorch's OpenMP regions made a step 5x slower. Call it first
// thing in main(). Thread counts do not change results.
int ConfigureCpuThreads();

// Whether an exception message is libtorch's out-of-memory error (CUDA or CPU allocator).
bool IsOutOfMemoryMessage(absl::string_view message);

}  // namespace vqd
