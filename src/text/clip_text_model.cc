#include "text/clip_text_model.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "nn/attention_kernel.h"

namespace vqd::text {

absl::StatusOr<ClipTextConfig> ClipTextConfig::FromJson(const io::JsonConfig& json) {
  ClipTextConfig c;
  VQD_ASSIGN_OR_RETURN(c.vocab_size, json.Int("vocab_size"));
  VQD_ASSIGN_OR_RETURN(c.hidden_size, json.Int("hidden_size"));
  VQD_ASSIGN_OR_RETURN(c.intermediate_size, json.Int("intermediate_size"));
  VQD_ASSIGN_OR_RETURN(c.num_hidden_layers, json.Int("num_hidden_layers"));
  VQD_ASSIGN_OR_RETURN(c.num_attention_heads, json.Int("num_attention_heads"));
  VQD_ASSIGN_OR_RETURN(c.max_position_embeddings, json.IntOr("max_position_embeddings", 77));
  VQD_ASSIGN_OR_RETURN(c.layer_norm_eps, json.FloatOr("layer_norm_eps", 1e-5));
  VQD_ASSIGN_OR_RETURN(c.hidden_act, json.StringOr("hidden_act", "quick_gelu"));
  if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu") {
    return absl::InvalidArgumentError(
        absl::StrCat(json.path(), ": \"hidden_act\" is \"", c.hidden_act, "\"; supported: quick_gelu, gelu"));
  }
  // Each size named with its value, so that a broken config says which field to fix.
  const std::pair<const char*, int64_t> sizes[] = {
      {"vocab_size", c.vocab_size},         {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads}, {"max_position_embeddings", c.max_position_embeddings}};
  for (const auto& [key, value] : sizes) {
    if (value <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(json.path(), ": \"", key, "\" must be at least 1, got ", value));
    }
  }
  if (c.hidden_size % c.num_attention_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(json.path(), ": \"hidden_size\" ", c.hidden_size,
                                                   " is not a multiple of \"num_attention_heads\" ",
                                                   c.num_attention_heads));
  }
  return c;
}

nlohmann::json ClipTextConfig::ToJson() const {
  return {{"architectures", {"CLIPTextModel"}},
          {"model_type", "clip_text_model"},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"max_position_embeddings", max_position_embeddings},
          {"layer_norm_eps", layer_norm_eps},
          {"hidden_act", hidden_act},
          {"attention_dropout", 0.0},
          {"projection_dim", hidden_size}};
}

ClipAttentionImpl::ClipAttentionImpl(const ClipTextConfig& c, const nn::TensorPlacement& placement)
    : heads_(c.num_attention_heads) {
  const int64_t d = c.hidden_size;
  k_proj = register_module("k_proj", nn::Linear(d, d, true, placement));
  v_proj = register_module("v_proj", nn::Linear(d, d, true, placement));
  q_proj = register_module("q_proj", nn::Linear(d, d, true, placement));
  out_proj = register_module("out_proj", nn::Linear(d, d, true, placement));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
  torch::Tensor q = nn::SplitHeads(q_proj(x), heads_);
  torch::Tensor k = nn::SplitHeads(k_proj(x), heads_);
  torch::Tensor v = nn::SplitHeads(v_proj(x), heads_);
  return out_proj(nn::MergeHeads(nn::ScaledDotProductAttention(q, k, v, /*causal=*/true)));
}

ClipMlpImpl::ClipMlpImpl(const ClipTextConfig& c, const nn::TensorPlacement& placement)
    : quick_gelu_(c.hidden_act == "quick_gelu") {
  fc1 = register_module("fc1", nn::Linear(c.hidden_size, c.intermediate_size, true, placement));
  fc2 = register_module("fc2", nn::Linear(c.intermediate_size, c.hidden_size, true, placement));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = fc1(x);
  return fc2(quick_gelu_ ? nn::QuickGelu(h) : torch::gelu(h));
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const ClipTextConfig& c, const nn::TensorPlacement& placement) {
  self_attn = register_module("self_attn", ClipAttention(c, placement));
  layer_norm1 = register_module("layer_norm1", nn::LayerNorm(c.hidden_size, c.layer_norm_eps, true, placement));
  mlp = register_module("mlp", ClipMlp(c, placement));
  layer_norm2 = register_module("layer_norm2", nn::LayerNorm(c.hidden_size, c.layer_norm_eps, true, placement));
}

torch::Tensor ClipEncoderLayerImpl::forward(torch::Tensor x) {
  x = x + self_attn(layer_norm1(x));
  return x + mlp(layer_norm2(x));
}

ClipTextModelImpl::ClipTextModelImpl(const ClipTextConfig& c, const nn::TensorPlacement& placement) : config_(c) {
  auto text_model = register_module("text_model", std::make_shared<torch::nn::Module>());
  auto embeddings = text_model->register_module("embeddings", std::make_shared<torch::nn::Module>());
  token_embedding_ = embeddings->register_module("token_embedding", nn::Embedding(c.vocab_size, c.hidden_size, placement));
  position_embedding_ = embeddings->register_module(
      "position_embedding", nn::Embedding(c.max_position_embeddings, c.hidden_size, placement));
  auto encoder = text_model->register_module("encoder", std::make_shared<torch::nn::Module>());
  auto layers = encoder->register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers_.push_back(ClipEncoderLayer(c, placement));
    layers->push_back(layers_.back());
  }
  final_layer_norm_ = text_model->register_module(
      "final_layer_norm", nn::LayerNorm(c.hidden_size, c.layer_norm_eps, true, placement));
}

torch::Tensor ClipTextModelImpl::forward(const torch::Tensor& input_ids) {
  const int64_t length = input_ids.size(1);
  TORCH_CHECK(length <= config_.max_position_embeddings, "input has ", length, " tokens, the text encoder takes at most ",
              config_.max_position_embeddings);
  torch::Tensor x = token_embedding_(input_ids) + position_embedding_->weight.narrow(0, 0, length).unsqueeze(0);
  for (auto& layer : layers_) x = layer(x);
  return final_layer_norm_(x);
}

const std::vector<std::string>& ClipTextIgnoredKeys() {
  static const std::vector<std::string> keys = {"text_model.embeddings.position_ids", "embeddings.position_ids"};
  return keys;
}

std::string RenameClipTextKey(const std::string& key) {
  // transformers 5 saves CLIPTextModel without the "text_model." prefix that 4.x and the hub's
  // ITHQ files carry; both load.
  static const std::string prefix = "text_model.";
  return key.compare(0, prefix.size(), prefix) == 0 ? key : prefix + key;
}

}  // namespace vqd::text
