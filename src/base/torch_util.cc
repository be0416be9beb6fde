#include "base/torch_util.h"

#include <cstdlib>
#include <string>

#ifdef VQD_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/cpu_count.h"

namespace vqd {

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<torch::Dtype> ParseDtype(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(std::string(name));
  if (n == "fp32" || n == "float32" || n == "float") return torch::kFloat32;
  if (n == "fp16" || n == "float16" || n == "half") return torch::kFloat16;
  if (n == "bf16" || n == "bfloat16") return torch::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype \"", name, "\"; expected fp32, fp16 or bf16"));
}

std::string DtypeName(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat32: return "fp32";
    case torch::kFloat16: return "fp16";
    case torch::kBFloat16: return "bf16";
    case torch::kFloat64: return "fp64";
    case torch::kInt64: return "int64";
    default: return std::string(c10::toString(dtype));
  }
}

absl::StatusOr<torch::Device> ParseDevice(absl::string_view name) {
  torch::Device device(torch::kCPU);
  try {
    device = torch::Device(std::string(name));
  } catch (const c10::Error&) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown device \"", name, "\"; expected cpu, cuda or cuda:N"));
  }
  if (device.is_cuda()) {
    if (!torch::cuda::is_available()) {
      return absl::FailedPreconditionError(
          absl::StrCat("device ", name, " requested but CUDA is not available in this build or machine"));
    }
    const int64_t index = device.has_index() ? device.index() : 0;
    if (index >= static_cast<int64_t>(torch::cuda::device_count())) {
      return absl::FailedPreconditionError(absl::StrCat("device ", name, " requested but only ",
                                                        torch::cuda::device_count(), " CUDA devices exist"));
    }
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  } else if (!device.is_cpu()) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported device \"", name, "\""));
  }
  return device;
}

std::optional<DeviceMemory> QueryDeviceMemory(const torch::Device& device) {
#ifdef VQD_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    // StatType::AGGREGATE; the enum moved namespaces between libtorch versions, its value did not.
    constexpr size_t aggregate = 0;
    DeviceMemory m;
    m.allocated_bytes = stats.allocated_bytes[aggregate].current;
    m.reserved_bytes = stats.reserved_bytes[aggregate].current;
    m.peak_allocated_bytes = stats.allocated_bytes[aggregate].peak;
    return m;
  }
#endif
  (void)device;
  return std::nullopt;
}

void ResetPeakDeviceMemory(const torch::Device& device) {
#ifdef VQD_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#endif
  (void)device;
}

int ConfigureCpuThreads() {
  if (const char* set = std::getenv("OMP_NUM_THREADS"); set == nullptr || *set == '\0') {
    at::set_num_threads(AvailableCpus());
  }
  return at::get_num_threads();
}

bool IsOutOfMemoryMessage(absl::string_view message) {
  const absl::string_view m(message.data(), message.size());
  return absl::StrContains(m, "out of memory") || absl::StrContains(m, "DefaultCPUAllocator: can't allocate memory") ||
         absl::StrContains(m, "OutOfMemoryError");
}

}  // namespace vqd
