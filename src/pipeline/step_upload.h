// The per-row metadata of one denoising step (timesteps, context slots, guidance scales,
// truncation rates, ...) packed into one host buffer and copied to the device in one go. On CUDA
// the buffer is pinned (the caching host allocator's, so reusing it waits for the copy) and the
// copy does not block the host: the step enqueues its kernels right behind it. On the CPU the
// buffer is simply the tensors.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace vqd::pipeline {

class StepUpload {
 public:
  explicit StepUpload(const torch::Device& device) : device_(device) {}

  // Adds a vector and returns its id.
  size_t Add(const std::vector<int64_t>& values);
  size_t Add(const std::vector<float>& values);

  // Packs everything added and copies it to the device. Call once, after the last Add.
  void Upload();

  // After Upload(): the vector `id` as a 1-D tensor on the device (a view of the upload).
  torch::Tensor Int64(size_t id) const;
  torch::Tensor Float(size_t id) const;

  // Whether the host side of the last Upload() was pinned memory (CUDA) — for tests.
  bool pinned() const { return pinned_; }

 private:
  struct Entry {
    bool is_float = false;
    int64_t offset = 0;  // in int64 units of the buffer
    int64_t count = 0;   // values
  };
  torch::Tensor View(size_t id, bool is_float) const;

  torch::Device device_;
  std::vector<Entry> entries_;
  std::vector<int64_t> ints_;
  std::vector<std::vector<float>> floats_;  // parallel to the float entries, packed at Upload()
  torch::Tensor device_buffer_;             // int64 [units]
  bool pinned_ = false;
};

}  // namespace vqd::pipeline
