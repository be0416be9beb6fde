#include "pipeline/grid_download.h"

#include <optional>

#ifdef VQD_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace vqd::pipeline {

struct GridDownload::Impl {
  std::vector<int64_t> rows;  // per grid set
  int64_t positions = 0;
  torch::Tensor host_grids, host_counts;  // pinned on CUDA
  torch::Tensor device_grids, device_counts;  // kept until the copy is done
  std::optional<Result> result;
#ifdef VQD_WITH_CUDA
  std::optional<at::cuda::CUDAEvent> copied;
#endif

  void Finish() {
    if (result) return;
#ifdef VQD_WITH_CUDA
    if (copied) copied->synchronize();
#endif
    Result r;
    r.grids = host_grids;
    const int64_t* counts = host_counts.data_ptr<int64_t>();
    int64_t offset = 0;
    for (int64_t n : rows) {
      int64_t masked = 0;
      for (int64_t i = 0; i < n; ++i) masked += counts[offset + i];
      offset += n;
      // As torch's eq(mask).float().mean(): an exact integer sum over a float division.
      r.masked_fraction.push_back(static_cast<float>(masked) / static_cast<float>(n * positions));
    }
    result = std::move(r);
    device_grids = torch::Tensor();
    device_counts = torch::Tensor();
  }
};

GridDownload::GridDownload() : impl_(std::make_unique<Impl>()) {}
GridDownload::GridDownload(GridDownload&&) noexcept = default;
GridDownload& GridDownload::operator=(GridDownload&&) noexcept = default;
GridDownload::~GridDownload() {
  if (impl_) impl_->Finish();
}

GridDownload GridDownload::Start(const std::vector<torch::Tensor>& grids, int64_t mask_class) {
  TORCH_CHECK(!grids.empty(), "GridDownload: no grids");
  GridDownload d;
  Impl& impl = *d.impl_;
  for (const torch::Tensor& g : grids) impl.rows.push_back(g.size(0));
  impl.positions = grids.front().size(1);
  torch::InferenceMode inference;
  torch::Tensor all = torch::cat(grids, 0);
  torch::Tensor counts = all.eq(mask_class).sum(1);  // [rows] int64
  if (!all.is_cuda()) {
    impl.host_grids = all;
    impl.host_counts = counts.contiguous();
    impl.Finish();
    return d;
  }
#ifdef VQD_WITH_CUDA
  const c10::DeviceIndex index = all.device().index();
  c10::cuda::CUDAGuard device_guard(index);
  c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(index);
  c10::cuda::CUDAStream copy = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
  at::cuda::CUDAEvent computed;
  computed.record(compute);
  computed.block(copy);
  const auto pinned = torch::TensorOptions().dtype(torch::kInt64).pinned_memory(true);
  impl.host_grids = torch::empty(all.sizes(), pinned);
  impl.host_counts = torch::empty(counts.sizes(), pinned);
  {
    c10::cuda::CUDAStreamGuard stream_guard(copy);
    impl.host_grids.copy_(all, /*non_blocking=*/true);
    impl.host_counts.copy_(counts, /*non_blocking=*/true);
    impl.copied.emplace(cudaEventBlockingSync | cudaEventDisableTiming);
    impl.copied->record(copy);
  }
  // The sources were made on the compute stream and are read on the copy stream: keep them
  // until the copy is done, so the caching allocator cannot hand their memory out before.
  impl.device_grids = all;
  impl.device_counts = counts;
#else
  TORCH_CHECK(false, "GridDownload: CUDA tensors in a build without CUDA");
#endif
  return d;
}

const GridDownload::Result& GridDownload::Wait() {
  impl_->Finish();
  return *impl_->result;
}

bool GridDownload::Ready() const {
  if (impl_->result) return true;
#ifdef VQD_WITH_CUDA
  if (impl_->copied) return impl_->copied->query();
#endif
  return true;
}

}  // namespace vqd::pipeline
