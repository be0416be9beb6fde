// Ref: transformers/models/clip/modeling_clip.py, CLIPTextModel (text tower only, pre-LN,
// causal self-attention, no padding mask: exactly how VQDiffusionPipeline calls it).
#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "io/json_config.h"
#include "nn/layers.h"

namespace vqd::text {

struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";  // or "gelu"

  static absl::StatusOr<ClipTextConfig> FromJson(const io::JsonConfig& json);
  nlohmann::json ToJson() const;
};

class ClipAttentionImpl : public torch::nn::Module {
 public:
  ClipAttentionImpl(const ClipTextConfig& config, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);  // [B, S, D], causal

  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(ClipAttention);

class ClipMlpImpl : public torch::nn::Module {
 public:
  ClipMlpImpl(const ClipTextConfig& config, const nn::TensorPlacement& placement);
  torch::Tensor forward(const torch::Tensor& x);

  nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  bool quick_gelu_;
};
TORCH_MODULE(ClipMlp);

class ClipEncoderLayerImpl : public torch::nn::Module {
 public:
  ClipEncoderLayerImpl(const ClipTextConfig& config, const nn::TensorPlacement& placement);
  torch::Tensor forward(torch::Tensor x);

  ClipAttention self_attn{nullptr};
  nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

// Registered as "text_model" with children embeddings, encoder.layers.i and final_layer_norm, so
// that the keys are transformers' ("text_model.embeddings.token_embedding.weight", ...).
class ClipTextModelImpl : public torch::nn::Module {
 public:
  ClipTextModelImpl(const ClipTextConfig& config, const nn::TensorPlacement& placement);

  // input_ids [B, S] int64 (S <= max_position_embeddings) -> last_hidden_state [B, S, D].
  torch::Tensor forward(const torch::Tensor& input_ids);

  const ClipTextConfig& config() const { return config_; }

 private:
  ClipTextConfig config_;
  nn::Embedding token_embedding_{nullptr}, position_embedding_{nullptr};
  std::vector<ClipEncoderLayer> layers_;
  nn::LayerNorm final_layer_norm_{nullptr};
};
TORCH_MODULE(ClipTextModel);

// Keys of old checkpoints that the model does not use.
const std::vector<std::string>& ClipTextIgnoredKeys();
// A file's key as the module names it ("embeddings.x" -> "text_model.embeddings.x").
std::string RenameClipTextKey(const std::string& key);

}  // namespace vqd::text
