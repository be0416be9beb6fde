#include "pipeline/transformer_runner.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/status_macros.h"
#include "base/torch_util.h"
#include "pipeline/vq_diffusion_pipeline.h"
#ifdef VQD_WITH_CUDA
#include "pipeline/step_graphs.h"
#endif

namespace vqd::pipeline {

#ifndef VQD_WITH_CUDA
class StepGraphs {};  // CUDA graphs exist in CUDA builds only; graphs_ stays null
#endif

model::TextContext ConcatContext(const std::vector<RowPiece>& pieces, const model::TextContext& null_context) {
  const size_t num_blocks = null_context.size();
  model::TextContext context(num_blocks);
  for (size_t b = 0; b < num_blocks; ++b) {
    std::vector<torch::Tensor> keys, values;
    keys.reserve(pieces.size());
    values.reserve(pieces.size());
    for (const RowPiece& p : pieces) {
      const model::CrossAttentionKV& kv = p.prompt ? p.prompt->context[b] : null_context[b];
      const int64_t n = p.tokens.size(0);
      keys.push_back(kv.key.expand({n, -1, -1}));
      values.push_back(kv.value.expand({n, -1, -1}));
    }
    context[b] = {torch::cat(keys, 0), torch::cat(values, 0)};
  }
  return context;
}

std::vector<int64_t> RowBuckets(int64_t max_rows) {
  std::vector<int64_t> buckets;
  for (int64_t b = 2; max_rows >= 1; b = b < 16 ? 2 * b : (b < 64 ? b + 8 : b + 16)) {
    buckets.push_back(b);
    if (b >= max_rows) break;
  }
  return buckets;
}

TransformerRunner::TransformerRunner(model::Transformer2DModel transformer, model::TextContext null_context,
                                     const torch::Device& device, int64_t mask_class, bool fused,
                                     int64_t max_bucket_rows, bool cuda_graphs)
    : transformer_(std::move(transformer)),
      null_context_(std::move(null_context)),
      device_(device),
      mask_class_(mask_class),
      fused_(fused),
      max_bucket_rows_(fused ? max_bucket_rows : 0),
      cuda_graphs_(cuda_graphs) {}

TransformerRunner::~TransformerRunner() = default;

bool TransformerRunner::graphs_captured() const { return graphs_ != nullptr; }

int64_t TransformerRunner::BucketFor(int64_t rows) const {
  if (!warm_) return 0;
  for (int64_t b : buckets_) {
    if (b >= rows) return b;
  }
  return 0;
}

int64_t TransformerRunner::slots_in_use() const {
  int64_t used = 0;
  for (size_t s = 1; s < slot_owner_.size(); ++s) used += slot_owner_[s].expired() ? 0 : 1;
  return used;
}

absl::Status TransformerRunner::WarmUp() {
  if (warm_ || max_bucket_rows_ < 1) return absl::OkStatus();
  const std::vector<int64_t> buckets = RowBuckets(max_bucket_rows_);
  const int64_t max_rows = buckets.back();
  const auto& config = transformer_->config();
  const int64_t n = config.num_latent_pixels();
  VQD_RETURN_IF_ERROR(CatchTorch("allocating the step's static buffers", [&] {
    torch::InferenceMode inference;
    const auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    tokens_ = torch::full({max_rows, n}, mask_class_, long_options);
    timesteps_ = torch::zeros({max_rows}, long_options);
    row_slot_ = torch::zeros({max_rows}, long_options);
    log_probs_ = torch::empty({max_rows, n, config.num_classes()}, long_options.dtype(torch::kFloat32));
    // A guided image costs two rows and its unconditional row reads slot 0, so half the rows (and
    // the null context) cover the default; passes with more prompts than that run eagerly.
    const int64_t slots = max_rows / 2 + 1;
    slots_.key.clear();
    slots_.value.clear();
    for (const model::CrossAttentionKV& kv : null_context_) {
      slots_.key.push_back(torch::zeros({slots, kv.key.size(1), kv.key.size(2)}, kv.key.options()));
      slots_.value.push_back(torch::zeros({slots, kv.value.size(1), kv.value.size(2)}, kv.value.options()));
    }
    WriteSlot(0, null_context_);
    slot_owner_.assign(static_cast<size_t>(slots), {});
    slot_key_.assign(static_cast<size_t>(slots), nullptr);
    slot_used_at_.assign(static_cast<size_t>(slots), -1);
  }));
  buckets_ = buckets;
  warm_ = true;
#ifdef VQD_WITH_CUDA
  if (device_.is_cuda() && cuda_graphs_) {
    auto graphs = std::make_unique<StepGraphs>();
    absl::Status captured = graphs->Capture(buckets_, [this](int64_t bucket) { ForwardBucket(bucket); }, device_);
    if (!captured.ok()) {
      spdlog::warn("CUDA graphs are off, the fast path runs eagerly: {}", std::string(captured.message()));
      return captured;
    }
    graphs_ = std::move(graphs);
  }
#endif
  return absl::OkStatus();
}

void TransformerRunner::WriteSlot(int64_t slot, const model::TextContext& context) {
  for (size_t b = 0; b < context.size(); ++b) {
    slots_.key[b].select(0, slot).copy_(context[b].key.select(0, 0));
    slots_.value[b].select(0, slot).copy_(context[b].value.select(0, 0));
  }
}

std::vector<int64_t> TransformerRunner::AssignSlots(const std::vector<RowPiece>& pieces) {
  ++pass_index_;
  std::vector<int64_t> assigned(pieces.size(), 0);
  std::vector<size_t> fresh;  // pieces whose prompt has no slot yet
  for (size_t i = 0; i < pieces.size(); ++i) {
    const std::shared_ptr<const PromptEncoding>& prompt = pieces[i].prompt;
    if (!prompt) continue;
    assigned[i] = -1;
    for (size_t s = 1; s < slot_owner_.size(); ++s) {
      // The raw pointer finds the slot, the weak owner proves it is still the same prompt.
      if (slot_key_[s] == prompt.get() && slot_owner_[s].lock() == prompt) {
        assigned[i] = static_cast<int64_t>(s);
        slot_used_at_[s] = pass_index_;
        break;
      }
    }
    if (assigned[i] < 0) fresh.push_back(i);
  }
  for (size_t i : fresh) {
    const std::shared_ptr<const PromptEncoding>& prompt = pieces[i].prompt;
    // Another piece of this pass may have placed the same prompt already.
    for (size_t j = 0; j < i && assigned[i] < 0; ++j) {
      if (pieces[j].prompt == prompt && assigned[j] > 0) assigned[i] = assigned[j];
    }
    if (assigned[i] > 0) continue;
    // A free slot: its owner is gone, or (least recently used first) it is not used by this pass.
    int64_t best = -1;
    for (size_t s = 1; s < slot_owner_.size(); ++s) {
      if (slot_used_at_[s] == pass_index_) continue;
      if (slot_owner_[s].expired()) {
        best = static_cast<int64_t>(s);
        break;
      }
      if (best < 0 || slot_used_at_[s] < slot_used_at_[static_cast<size_t>(best)]) best = static_cast<int64_t>(s);
    }
    if (best < 0) return {};
    const size_t s = static_cast<size_t>(best);
    WriteSlot(best, prompt->context);
    ++counters_.slot_writes;
    slot_owner_[s] = prompt;
    slot_key_[s] = prompt.get();
    slot_used_at_[s] = pass_index_;
    assigned[i] = best;
  }
  return assigned;
}

TransformerRunner::Pass TransformerRunner::Prepare(const std::vector<RowPiece>& pieces, StepUpload& upload) {
  Pass pass;
  pass.pieces = &pieces;
  for (const RowPiece& p : pieces) pass.rows += p.tokens.size(0);
  pass.bucket = fused_ ? BucketFor(pass.rows) : 0;
  std::vector<int64_t> piece_slots;
  if (pass.bucket > 0) {
    piece_slots = AssignSlots(pieces);
    if (piece_slots.empty()) pass.bucket = 0;
  }
  // Padding rows hold valid indices (timestep 0, the null context's slot, masked tokens).
  std::vector<int64_t> timesteps, slots;
  timesteps.reserve(static_cast<size_t>(std::max(pass.rows, pass.bucket)));
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int64_t n = pieces[i].tokens.size(0);
    timesteps.insert(timesteps.end(), static_cast<size_t>(n), pieces[i].timestep);
    if (pass.bucket > 0) slots.insert(slots.end(), static_cast<size_t>(n), piece_slots[i]);
  }
  if (pass.bucket > 0) {
    timesteps.resize(static_cast<size_t>(pass.bucket), 0);
    slots.resize(static_cast<size_t>(pass.bucket), 0);
    pass.slots_id = upload.Add(slots);
  }
  pass.timesteps_id = upload.Add(timesteps);
  return pass;
}

void TransformerRunner::ForwardBucket(int64_t bucket) {
  torch::InferenceMode inference;
  transformer_->ForwardFused(tokens_.narrow(0, 0, bucket), timesteps_.narrow(0, 0, bucket),
                             model::RowContext::Gathered(slots_, row_slot_.narrow(0, 0, bucket)),
                             log_probs_.narrow(0, 0, bucket));
}

torch::Tensor TransformerRunner::Run(const Pass& pass, const StepUpload& upload) {
  const std::vector<RowPiece>& pieces = *pass.pieces;
  std::vector<torch::Tensor> tokens;
  tokens.reserve(pieces.size());
  for (const RowPiece& p : pieces) tokens.push_back(p.tokens);
  if (pass.bucket == 0) {
    ++counters_.eager_passes;
    return transformer_(torch::cat(tokens, 0), upload.Int64(pass.timesteps_id), ConcatContext(pieces, null_context_));
  }
  ++counters_.bucketed_passes;
  counters_.real_rows += pass.rows;
  counters_.padded_rows += pass.bucket - pass.rows;
  torch::Tensor real_rows = tokens_.narrow(0, 0, pass.rows);
  torch::cat_out(real_rows, tokens, 0);
  if (pass.bucket > pass.rows) tokens_.narrow(0, pass.rows, pass.bucket - pass.rows).fill_(mask_class_);
  timesteps_.narrow(0, 0, pass.bucket).copy_(upload.Int64(pass.timesteps_id));
  row_slot_.narrow(0, 0, pass.bucket).copy_(upload.Int64(pass.slots_id));
#ifdef VQD_WITH_CUDA
  if (graphs_) {
    graphs_->Replay(pass.bucket);
    return log_probs_.narrow(0, 0, pass.rows).permute({0, 2, 1});
  }
#endif
  ForwardBucket(pass.bucket);
  return log_probs_.narrow(0, 0, pass.rows).permute({0, 2, 1});
}

}  // namespace vqd::pipeline
