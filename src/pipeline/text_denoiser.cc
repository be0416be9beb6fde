#include "pipeline/text_denoiser.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "pipeline/component_loading.h"

namespace vqd::pipeline {

absl::StatusOr<std::unique_ptr<TextDenoiser>> TextDenoiser::Load(const ModelDirectory& dir,
                                                                 const nn::TensorPlacement& placement,
                                                                 const std::string& variant) {
  std::unique_ptr<TextDenoiser> d(new TextDenoiser());
  d->device_ = placement.device;
  // Configs first, so that a broken directory fails before any large read.
  VQD_ASSIGN_OR_RETURN(io::JsonConfig transformer_json, LoadComponentConfig(dir, "transformer"));
  VQD_ASSIGN_OR_RETURN(model::Transformer2DConfig transformer_config,
                       model::Transformer2DConfig::FromJson(transformer_json));
  VQD_ASSIGN_OR_RETURN(io::JsonConfig text_json, LoadComponentConfig(dir, "text_encoder"));
  VQD_ASSIGN_OR_RETURN(text::ClipTextConfig text_config, text::ClipTextConfig::FromJson(text_json));
  if (text_config.hidden_size != transformer_config.cross_attention_dim) {
    return absl::InvalidArgumentError(absl::StrCat("text_encoder hidden_size ", text_config.hidden_size,
                                                   " != transformer cross_attention_dim ",
                                                   transformer_config.cross_attention_dim));
  }
  VQD_ASSIGN_OR_RETURN(text::ClipTokenizer tokenizer,
                       text::ClipTokenizer::Load(dir.ComponentDir("tokenizer"), dir.metadata().tokenizer_rules));
  d->tokenizer_ = std::make_unique<text::ClipTokenizer>(std::move(tokenizer));
  if (d->tokenizer_->max_length() > text_config.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer model_max_length ", d->tokenizer_->max_length(),
                                                   " exceeds the text encoder's max_position_embeddings ",
                                                   text_config.max_position_embeddings));
  }

  VQD_RETURN_IF_ERROR(CatchTorch("building the text modules", [&] {
    d->text_encoder_ = text::ClipTextModel(text_config, placement);
    d->transformer_ = model::Transformer2DModel(transformer_config, placement);
  }));
  nn::LoadOptions text_load;
  text_load.ignored_keys = text::ClipTextIgnoredKeys();
  text_load.rename = text::RenameClipTextKey;
  VQD_RETURN_IF_ERROR(LoadComponentWeights(dir, "text_encoder", variant, *d->text_encoder_, text_load));
  VQD_RETURN_IF_ERROR(LoadComponentWeights(dir, "transformer", variant, *d->transformer_, {}));
  d->text_encoder_->eval();
  d->transformer_->eval();

  // The unconditional embeddings for guidance.
  if (dir.has_learned_embeddings()) {
    VQD_ASSIGN_OR_RETURN(io::JsonConfig json, LoadComponentConfig(dir, "learned_classifier_free_sampling_embeddings"));
    VQD_ASSIGN_OR_RETURN(d->learned_null_, json.BoolOr("learnable", false));
    if (d->learned_null_) {
      VQD_ASSIGN_OR_RETURN(int64_t hidden, json.Int("hidden_size"));
      VQD_ASSIGN_OR_RETURN(int64_t length, json.Int("length"));
      if (hidden != text_config.hidden_size || length != d->tokenizer_->max_length()) {
        return absl::InvalidArgumentError(absl::StrCat(
            json.path(), ": learned embeddings of ", length, " x ", hidden, " do not match the text encoder (",
            d->tokenizer_->max_length(), " x ", text_config.hidden_size, ")"));
      }
      torch::nn::Module holder;
      torch::Tensor embeddings =
          holder.register_parameter("embeddings", torch::empty({length, hidden}, placement.options()), false);
      VQD_RETURN_IF_ERROR(
          LoadComponentWeights(dir, "learned_classifier_free_sampling_embeddings", variant, holder, {}));
      d->null_embeddings_ = embeddings.unsqueeze(0);
    }
  } else {
    spdlog::warn(
        "{}: model_index.json has no learned_classifier_free_sampling_embeddings (e.g. the hub's old fp16 "
        "branch); diffusers refuses such a model, this server falls back to guidance with the empty prompt",
        dir.root());
  }

  VQD_RETURN_IF_ERROR(CatchTorch("preparing the null context", [&] {
    torch::InferenceMode inference;
    d->transformer_->PrepareForInference();
    if (!d->learned_null_) {
      // Zero-shot guidance: the encoded empty prompt, normalised like any prompt.
      std::vector<int64_t> ids = d->tokenizer_->EncodeToLength("");
      torch::Tensor input = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(placement.device);
      torch::Tensor h = d->text_encoder_(input);
      d->null_embeddings_ = h / h.norm(2, -1, /*keepdim=*/true);
    }
    d->null_context_ = d->transformer_->ProjectContext(d->null_embeddings_);
  }));
  return d;
}

absl::StatusOr<torch::Tensor> TextDenoiser::EncodeIds(const torch::Tensor& input_ids) {
  torch::Tensor out;
  VQD_RETURN_IF_ERROR(CatchTorch("encoding prompt ids", [&] {
    torch::InferenceMode inference;
    torch::Tensor h = text_encoder_(input_ids.to(device_));
    out = h / h.norm(2, -1, /*keepdim=*/true);
  }));
  return out;
}

absl::StatusOr<std::shared_ptr<const PromptEncoding>> TextDenoiser::EncodePrompt(absl::string_view prompt) {
  auto encoding = std::make_shared<PromptEncoding>();
  encoding->input_ids =
      tokenizer_->EncodeToLength(std::string_view(prompt.data(), prompt.size()), &encoding->untruncated_length);
  VQD_ASSIGN_OR_RETURN(encoding->embeddings,
                       EncodeIds(torch::tensor(encoding->input_ids, torch::kInt64).unsqueeze(0)));
  VQD_RETURN_IF_ERROR(CatchTorch("projecting the prompt for cross-attention", [&] {
    torch::InferenceMode inference;
    encoding->context = transformer_->ProjectContext(encoding->embeddings);
  }));
  return std::shared_ptr<const PromptEncoding>(std::move(encoding));
}

torch::Tensor TextDenoiser::LogProbs(const torch::Tensor& tokens, const torch::Tensor& timesteps,
                                     const std::vector<ConditionRun>& runs) {
  // Each run's per-block keys and values, expanded to its rows and stacked in row order.
  const size_t num_blocks = null_context_.size();
  model::TextContext context(num_blocks);
  for (size_t b = 0; b < num_blocks; ++b) {
    std::vector<torch::Tensor> keys, values;
    for (const ConditionRun& run : runs) {
      const model::CrossAttentionKV& kv = run.condition ? run.condition->context[b] : null_context_[b];
      keys.push_back(kv.key.expand({run.rows, -1, -1}));
      values.push_back(kv.value.expand({run.rows, -1, -1}));
    }
    context[b] = {torch::cat(keys, 0), torch::cat(values, 0)};
  }
  return transformer_(tokens, timesteps, context);
}

}  // namespace vqd::pipeline
