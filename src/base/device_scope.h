// The device a thread works on. A CUDA device becomes the thread's current device, and the thread
// gets a stream of its own from libtorch's pool, so that two workers on one GPU (or a worker and a
// loading thread) do not serialise on the device's default stream. Nothing happens for the CPU.
#pragma once

#include <memory>

#include <torch/torch.h>

namespace vqd {

class DeviceScope {
 public:
  explicit DeviceScope(const torch::Device& device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

  // Waits until the work queued on this scope's stream is done (no-op on the CPU).
  void Synchronize() const;

 private:
  struct Guards;
  std::unique_ptr<Guards> guards_;  // null for the CPU
};

// Waits for the current stream of `device` (no-op on the CPU).
void SynchronizeDevice(const torch::Device& device);

// Float32 without TF32 on CUDA, in matrix products and convolutions: what diffusers computes with
// TF32 disabled, and what the CUDA reference data was made with. (libtorch's default leaves TF32 on
// for cuDNN convolutions.) No effect without CUDA.
void UseExactFloat32OnCuda();

}  // namespace vqd
