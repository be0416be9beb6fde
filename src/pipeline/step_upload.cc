#include "pipeline/step_upload.h"

#include <algorithm>
#include <cstring>

namespace vqd::pipeline {

size_t StepUpload::Add(const std::vector<int64_t>& values) {
  TORCH_CHECK(!device_buffer_.defined(), "StepUpload: Add after Upload");
  entries_.push_back({false, static_cast<int64_t>(ints_.size()), static_cast<int64_t>(values.size())});
  ints_.insert(ints_.end(), values.begin(), values.end());
  return entries_.size() - 1;
}

size_t StepUpload::Add(const std::vector<float>& values) {
  TORCH_CHECK(!device_buffer_.defined(), "StepUpload: Add after Upload");
  // Two floats per int64 unit; the offset is settled at Upload, after the integers.
  entries_.push_back({true, static_cast<int64_t>(floats_.size()), static_cast<int64_t>(values.size())});
  floats_.push_back(values);
  return entries_.size() - 1;
}

void StepUpload::Upload() {
  TORCH_CHECK(!device_buffer_.defined(), "StepUpload: Upload called twice");
  int64_t units = static_cast<int64_t>(ints_.size());
  for (Entry& e : entries_) {
    if (!e.is_float) continue;
    const std::vector<float>& values = floats_[static_cast<size_t>(e.offset)];
    e.offset = units;
    units += (static_cast<int64_t>(values.size()) + 1) / 2;
  }
  const bool cuda = device_.is_cuda();
  // Pinned memory from the caching host allocator: its block is not handed out again before the
  // copy that reads it has finished, so the copy below may run behind the host.
  torch::Tensor host =
      torch::empty({std::max<int64_t>(units, 1)}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(cuda));
  int64_t* data = host.data_ptr<int64_t>();
  if (!ints_.empty()) std::memcpy(data, ints_.data(), ints_.size() * sizeof(int64_t));
  size_t float_index = 0;
  for (const Entry& e : entries_) {
    if (!e.is_float) continue;
    const std::vector<float>& values = floats_[float_index++];
    if (!values.empty()) std::memcpy(data + e.offset, values.data(), values.size() * sizeof(float));
  }
  pinned_ = cuda && host.is_pinned();
  device_buffer_ = cuda ? host.to(torch::TensorOptions().device(device_), /*non_blocking=*/true) : host;
}

torch::Tensor StepUpload::View(size_t id, bool is_float) const {
  TORCH_CHECK(device_buffer_.defined(), "StepUpload: read before Upload");
  TORCH_CHECK(id < entries_.size() && entries_[id].is_float == is_float, "StepUpload: no ",
              is_float ? "float" : "int64", " vector with id ", id);
  const Entry& e = entries_[id];
  if (!is_float) return device_buffer_.narrow(0, e.offset, e.count);
  const int64_t units = (e.count + 1) / 2;
  if (units == 0) return torch::empty({0}, device_buffer_.options().dtype(torch::kFloat32));
  return device_buffer_.narrow(0, e.offset, units).view(torch::kFloat32).narrow(0, 0, e.count);
}

torch::Tensor StepUpload::Int64(size_t id) const { return View(id, false); }
torch::Tensor StepUpload::Float(size_t id) const { return View(id, true); }

}  // namespace vqd::pipeline
