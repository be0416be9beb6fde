// One transformer pass over a denoising step's rows, on one of two paths:
//  - reference: the rows' tokens and text context concatenated for this step, the transformer as
//    diffusers runs it (what the parity tests check);
//  - fast (PipelineOptions::fused): the fused forward; with row buckets, the pass reads static
//    buffers padded to the smallest bucket that holds the rows, its cross-attention context
//    gathered from fixed slots (one per prompt, written once when the prompt first runs), so on
//    CUDA each bucket is one captured CUDA graph, replayed at every step (step_graphs.h).
// Used by one thread at a time (the pipeline's user: a device worker, or Generate).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "model/transformer_2d.h"
#include "pipeline/step_upload.h"

namespace vqd::pipeline {

struct PromptEncoding;
class StepGraphs;

// Rows of one step that share tokens, timestep and text: `tokens` [n, N] on the device.
struct RowPiece {
  torch::Tensor tokens;
  int64_t timestep = 0;
  std::shared_ptr<const PromptEncoding> prompt;  // null: the unconditional (null) context
};

// The per-row text context of `pieces`, concatenated ([R, 77, inner] per block, rows expanded
// from each prompt's [1, 77, inner]). The reference path's context, and the fast path's when a
// pass runs outside the buckets.
model::TextContext ConcatContext(const std::vector<RowPiece>& pieces, const model::TextContext& null_context);

// The row buckets for passes of up to `max_rows` rows: 2, 4, 8, 16, then every 8 up to 64, then
// every 16, the last one `max_rows` or more. Empty for max_rows < 1.
std::vector<int64_t> RowBuckets(int64_t max_rows);

class TransformerRunner {
 public:
  // `null_context`: the unconditional keys and values ([1, 77, inner] per block). With `fused`
  // and max_bucket_rows > 0, passes of up to that many rows run bucketed (after WarmUp()).
  TransformerRunner(model::Transformer2DModel transformer, model::TextContext null_context, const torch::Device& device,
                    int64_t mask_class, bool fused, int64_t max_bucket_rows, bool cuda_graphs = true);
  ~TransformerRunner();

  // Allocates the static buffers and slots and, on CUDA, captures one graph per bucket (largest
  // first). Call once before the first step; a failure leaves the runner eager (and says why).
  absl::Status WarmUp();

  // A planned pass: Prepare adds its per-row vectors to the step's upload; Run (after the
  // upload) returns log p(x_0 | x_t) [R, K, N] float32 for the pieces' rows in order. A bucketed
  // pass returns a view of a static buffer, valid until the next Run.
  struct Pass {
    const std::vector<RowPiece>* pieces = nullptr;
    int64_t rows = 0;
    int64_t bucket = 0;  // 0: eager
    size_t timesteps_id = 0, slots_id = 0;
  };
  Pass Prepare(const std::vector<RowPiece>& pieces, StepUpload& upload);
  torch::Tensor Run(const Pass& pass, const StepUpload& upload);

  bool fused() const { return fused_; }
  const std::vector<int64_t>& buckets() const { return buckets_; }
  bool graphs_captured() const;
  // Smallest bucket holding `rows`, or 0 (eager) when there is none or the runner is not warmed up.
  int64_t BucketFor(int64_t rows) const;
  // Prompts whose context now sits in a slot; slots in all (the null context's included).
  int64_t slots_in_use() const;
  int64_t slot_capacity() const { return static_cast<int64_t>(slot_owner_.size()); }
  // Statistics since construction: passes run bucketed / eagerly, and rows padded in buckets.
  struct Counters {
    int64_t bucketed_passes = 0, eager_passes = 0, padded_rows = 0, real_rows = 0, slot_writes = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  // Slot of each piece (0: the null context), writing new prompts' keys and values into free
  // slots; empty when the slots cannot hold this step's prompts.
  std::vector<int64_t> AssignSlots(const std::vector<RowPiece>& pieces);
  void WriteSlot(int64_t slot, const model::TextContext& context);
  // The fused forward over the first `bucket` rows of the static buffers.
  void ForwardBucket(int64_t bucket);

  model::Transformer2DModel transformer_;
  model::TextContext null_context_;
  torch::Device device_;
  int64_t mask_class_;
  bool fused_;
  int64_t max_bucket_rows_;
  bool cuda_graphs_;
  std::vector<int64_t> buckets_;  // set by WarmUp
  bool warm_ = false;

  // Static buffers of the bucketed passes, sized for the largest bucket.
  torch::Tensor tokens_;     // [Bmax, N] int64
  torch::Tensor timesteps_;  // [Bmax] int64
  torch::Tensor row_slot_;   // [Bmax] int64
  torch::Tensor log_probs_;  // [Bmax, N, K] float32
  model::ContextSlots slots_;
  // Host side of the slots: who owns each (weak: a finished request frees its prompt) and when it
  // was last used. Slot 0 is the null context, never reassigned.
  std::vector<std::weak_ptr<const PromptEncoding>> slot_owner_;
  std::vector<const PromptEncoding*> slot_key_;
  std::vector<int64_t> slot_used_at_;
  int64_t pass_index_ = 0;

  std::unique_ptr<StepGraphs> graphs_;  // CUDA builds, CUDA devices only
  Counters counters_;
};

}  // namespace vqd::pipeline
