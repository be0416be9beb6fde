// Progress grids brought to the host without stalling the thread that enqueues the steps. Start()
// concatenates the grids and counts their masked tokens on the device (on the current stream),
// then copies both on a side stream into pinned host memory and records an event; Wait() blocks
// on that event (sleeping, not spinning) and returns the host tensors. A worker can hand the
// handle to another thread and go on enqueueing the next step. On the CPU everything is done in
// Start().
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

namespace vqd::pipeline {

class GridDownload {
 public:
  // grids: [n_i, N] int64 on one device. mask_class: the token whose share Wait() reports.
  static GridDownload Start(const std::vector<torch::Tensor>& grids, int64_t mask_class);

  GridDownload(GridDownload&&) noexcept;
  GridDownload& operator=(GridDownload&&) noexcept;
  ~GridDownload();  // waits for the copy if nobody did

  struct Result {
    torch::Tensor grids;                 // [sum n_i, N] int64, CPU
    std::vector<float> masked_fraction;  // per input grid set: its masked tokens / its tokens
  };
  // Blocks until the copy is done (once; later calls return the same result).
  const Result& Wait();
  // Whether the copy has finished, without blocking.
  bool Ready() const;

 private:
  GridDownload();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vqd::pipeline
