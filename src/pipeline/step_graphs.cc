#include "pipeline/step_graphs.h"

#include <algorithm>
#include <chrono>
#include <map>

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <spdlog/spdlog.h>

#include "base/torch_util.h"

namespace vqd::pipeline {

struct StepGraphs::Impl {
  std::map<int64_t, std::unique_ptr<at::cuda::CUDAGraph>> graphs;  // CUDAGraph can neither copy nor move
};

StepGraphs::StepGraphs() : impl_(std::make_unique<Impl>()) {}
StepGraphs::~StepGraphs() = default;

bool StepGraphs::Has(int64_t bucket) const { return impl_->graphs.count(bucket) > 0; }

void StepGraphs::Replay(int64_t bucket) {
  auto it = impl_->graphs.find(bucket);
  TORCH_CHECK(it != impl_->graphs.end(), "no CUDA graph was captured for ", bucket, " rows");
  it->second->replay();
}

absl::Status StepGraphs::Capture(const std::vector<int64_t>& buckets, const std::function<void(int64_t)>& forward,
                                 const torch::Device& device) {
  std::vector<int64_t> order = buckets;
  std::sort(order.rbegin(), order.rend());  // largest first: the smaller ones reuse its pool blocks
  absl::Status status = CatchTorch("capturing the transformer's CUDA graphs", [&] {
    torch::InferenceMode inference;
    const c10::DeviceIndex index = device.has_index() ? device.index() : 0;
    c10::cuda::CUDAGuard device_guard(index);
    c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(index);
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, index);
    at::cuda::CUDAEvent inputs_ready;
    inputs_ready.record(caller);  // the static buffers were written on the caller's stream
    inputs_ready.block(side);
    const c10::MempoolId_t pool = at::cuda::graph_pool_handle();
    {
      c10::cuda::CUDAStreamGuard stream_guard(side);
      for (int64_t bucket : order) {
        const auto start = std::chrono::steady_clock::now();
        const auto before = QueryDeviceMemory(device);
        forward(bucket);  // eager, outside the capture
        side.synchronize();
        auto graph = std::make_unique<at::cuda::CUDAGraph>();
        graph->capture_begin(pool, cudaStreamCaptureModeThreadLocal);
        try {
          forward(bucket);
        } catch (...) {
          // Leave the stream out of capture mode before reporting the failure.
          cudaGraph_t aborted = nullptr;
          cudaStreamEndCapture(side.stream(), &aborted);
          if (aborted != nullptr) cudaGraphDestroy(aborted);
          throw;
        }
        graph->capture_end();
        side.synchronize();
        const auto after = QueryDeviceMemory(device);
        spdlog::info("CUDA graph for {} rows captured in {:.2f} s ({:+.1f} MiB reserved)", bucket,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                     before && after ? (after->reserved_bytes - before->reserved_bytes) / 1048576.0 : 0.0);
        impl_->graphs[bucket] = std::move(graph);
      }
    }
    at::cuda::CUDAEvent captured;
    captured.record(side);
    captured.block(caller);
  });
  if (!status.ok()) impl_->graphs.clear();
  return status;
}

}  // namespace vqd::pipeline
