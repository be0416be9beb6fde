// One captured CUDA graph per row bucket of the transformer's fast path (CUDA builds only; the
// CPU build neither compiles nor includes this). The graphs share one memory pool and are
// captured largest first on a side stream, each after one eager run there (cuBLAS handles and
// workspaces, allocator growth), in thread-local capture mode so that other threads' CUDA calls
// are not refused meanwhile. Replays run on the caller's current stream. The forward reads and
// writes only static buffers that outlive the graphs (TransformerRunner's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"

namespace vqd::pipeline {

class StepGraphs {
 public:
  StepGraphs();
  ~StepGraphs();
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Captures forward(bucket) for every bucket. On failure no graph is kept.
  absl::Status Capture(const std::vector<int64_t>& buckets, const std::function<void(int64_t)>& forward,
                       const torch::Device& device);
  bool Has(int64_t bucket) const;
  void Replay(int64_t bucket);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vqd::pipeline
