#include "base/device_scope.h"

#include <optional>

#include <torch/version.h>

#ifdef VQD_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace vqd {

struct DeviceScope::Guards {
#ifdef VQD_WITH_CUDA
  explicit Guards(c10::DeviceIndex index)
      : device(index), stream(c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index)) {}
  c10::cuda::CUDAGuard device;
  c10::cuda::CUDAStreamGuard stream;
#endif
};

DeviceScope::DeviceScope(const torch::Device& device) {
#ifdef VQD_WITH_CUDA
  if (device.is_cuda()) guards_ = std::make_unique<Guards>(device.has_index() ? device.index() : 0);
#endif
  (void)device;
}

DeviceScope::~DeviceScope() = default;

void DeviceScope::Synchronize() const {
#ifdef VQD_WITH_CUDA
  if (guards_) guards_->stream.current_stream().synchronize();
#endif
}

void SynchronizeDevice(const torch::Device& device) {
#ifdef VQD_WITH_CUDA
  if (device.is_cuda()) {
    c10::cuda::getCurrentCUDAStream(device.has_index() ? device.index() : -1).synchronize();
  }
#endif
  (void)device;
}

void UseExactFloat32OnCuda() {
#ifdef VQD_WITH_CUDA
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 11)
  // The per-backend precision API (as in 2.11's headers); the boolean setters below warn there.
  at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL,
                                          at::Float32Precision::IEEE);
  at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV,
                                          at::Float32Precision::IEEE);
#else
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
#endif
#endif
}

}  // namespace vqd
