// Text-conditioned models: CLIP tokenizer and text encoder, and the discrete Transformer2DModel
// that cross-attends to the prompt (ITHQ and the official text checkpoints).
#pragma once

#include <memory>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/transformer_2d.h"
#include "nn/layers.h"
#include "nn/state_dict.h"
#include "pipeline/conditional_denoiser.h"
#include "pipeline/model_directory.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"

namespace vqd::pipeline {

class TextDenoiser final : public ConditionalDenoiser {
 public:
  // Loads transformer, text_encoder, tokenizer (with the directory's tokenizer rules) and the
  // learned null embedding when the directory has one, else encodes the empty prompt for guidance.
  static absl::StatusOr<std::unique_ptr<TextDenoiser>> Load(const ModelDirectory& dir,
                                                            const nn::TensorPlacement& placement,
                                                            const std::string& variant);

  // Tokenises (max_prompt_tokens ids) and encodes a prompt, and projects it for cross-attention.
  absl::StatusOr<std::shared_ptr<const PromptEncoding>> EncodePrompt(absl::string_view prompt);
  // text_encoder(ids).last_hidden_state, L2-normalised per token: [P, 77, C].
  absl::StatusOr<torch::Tensor> EncodeIds(const torch::Tensor& input_ids);

  torch::Tensor LogProbs(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                         const std::vector<ConditionRun>& runs) override;
  int64_t num_vector_embeds() const override { return transformer_->config().num_vector_embeds; }
  int64_t grid_height() const override { return transformer_->config().sample_size; }
  int64_t grid_width() const override { return transformer_->config().sample_size; }
  int64_t num_embeds_ada_norm() const override { return transformer_->config().num_embeds_ada_norm; }
  int64_t transformer_parameters() const override { return nn::CountParameters(*transformer_); }

  const text::ClipTokenizer& tokenizer() const { return *tokenizer_; }
  model::Transformer2DModel& transformer() { return transformer_; }
  text::ClipTextModel& text_encoder() { return text_encoder_; }
  const torch::Tensor& null_embeddings() const { return null_embeddings_; }  // [1, 77, C]
  const model::TextContext& null_context() const { return null_context_; }
  bool learned_null_embeddings() const { return learned_null_; }

 private:
  TextDenoiser() = default;

  torch::Device device_ = torch::kCPU;
  std::unique_ptr<text::ClipTokenizer> tokenizer_;
  text::ClipTextModel text_encoder_{nullptr};
  model::Transformer2DModel transformer_{nullptr};
  torch::Tensor null_embeddings_;    // [1, 77, C]
  model::TextContext null_context_;  // its keys and values, computed once at load
  bool learned_null_ = false;
};

}  // namespace vqd::pipeline
