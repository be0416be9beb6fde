#include "pipeline/model_factory.h"

#include <cmath>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/vq_schedule.h"
#include "io/file_util.h"
#include "io/safetensors.h"
#include "model/transformer_2d.h"
#include "model/vq_model.h"
#include "nn/state_dict.h"
#include "pipeline/model_writer.h"
#include "text/bpe_trainer.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"

namespace vqd::pipeline {
namespace fs = std::filesystem;
namespace {

struct PresetConfigs {
  model::Transformer2DConfig transformer;
  model::VqModelConfig vqvae;
  text::ClipTextConfig text;
  diffusion::VqScheduleConfig scheduler;
  int tokenizer_merges = 0;
};

PresetConfigs ConfigsFor(ModelPreset preset) {
  PresetConfigs c;
  c.tokenizer_merges = 768;
  if (preset == ModelPreset::kTiny) {
    c.transformer.num_attention_heads = 2;
    c.transformer.attention_head_dim = 16;
    c.transformer.num_layers = 2;
    c.transformer.num_vector_embeds = 17;
    c.transformer.sample_size = 8;
    c.transformer.cross_attention_dim = 32;
    c.vqvae.block_out_channels = {32, 32, 64};
    c.vqvae.down_block_types = {"DownEncoderBlock2D", "AttnDownEncoderBlock2D", "DownEncoderBlock2D"};
    c.vqvae.up_block_types = {"UpDecoderBlock2D", "AttnUpDecoderBlock2D", "UpDecoderBlock2D"};
    c.vqvae.layers_per_block = 1;
    c.vqvae.latent_channels = 4;
    c.vqvae.num_vq_embeddings = 16;
    c.vqvae.vq_embed_dim = 4;
    c.text.hidden_size = 32;
    c.text.intermediate_size = 37;
    c.text.num_hidden_layers = 2;
    c.text.num_attention_heads = 4;
  } else if (preset == ModelPreset::kSmall) {
    c.transformer.num_attention_heads = 4;
    c.transformer.attention_head_dim = 64;
    c.transformer.num_layers = 4;
    c.transformer.num_vector_embeds = 1025;
    c.transformer.sample_size = 16;
    c.transformer.cross_attention_dim = 256;
    c.vqvae.block_out_channels = {64, 128, 128};
    c.vqvae.down_block_types = {"DownEncoderBlock2D", "DownEncoderBlock2D", "AttnDownEncoderBlock2D"};
    c.vqvae.up_block_types = {"AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"};
    c.vqvae.layers_per_block = 1;
    c.vqvae.latent_channels = 64;
    c.vqvae.num_vq_embeddings = 1024;
    c.vqvae.vq_embed_dim = 64;
    c.text.hidden_size = 256;
    c.text.intermediate_size = 1024;
    c.text.num_hidden_layers = 4;
    c.text.num_attention_heads = 4;
  } else {  // ITHQ (spec section 0): 36 x 1408 transformer, 4096 codes on 32x32, CLIP ViT-B/32 text tower.
    c.vqvae.block_out_channels = {64, 128, 256, 512};
    c.vqvae.down_block_types = {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "AttnDownEncoderBlock2D"};
    c.vqvae.up_block_types = {"AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"};
    c.vqvae.layers_per_block = 2;
    c.vqvae.latent_channels = 256;
    c.vqvae.num_vq_embeddings = 4096;
    c.vqvae.vq_embed_dim = 128;
  }
  // ITHQ keeps CLIP's 49408-row table (the project's small vocabulary's ids fit in it); the tiny
  // model's table is sized to its vocabulary once the tokenizer is written.
  c.text.vocab_size = 49408;
  c.scheduler.num_vec_classes = c.transformer.num_vector_embeds;
  return c;
}

// Deterministic random values with a scale that keeps activations in a sane range: fan-in scaled
// normals for matrices and kernels, near-one norm scales, small biases.
void Randomize(torch::nn::Module& module, torch::Generator& gen) {
  torch::NoGradGuard no_grad;
  for (auto& item : nn::ModuleStateDict(module)) {  // sorted by name: the same values for the same seed
    const std::string& name = item.first;
    torch::Tensor& p = item.second;
    torch::Tensor values = torch::randn(p.sizes(), gen, torch::kFloat32);
    const bool is_norm = absl::StrContains(name, "norm") && !absl::StrContains(name, ".linear.");
    if (absl::EndsWith(name, "bias")) {
      values = values * 0.02;
    } else if (is_norm && p.dim() == 1) {
      values = 1 + values * 0.1;
    } else if (p.dim() >= 2 && !absl::StrContains(name, "emb")) {
      values = values / std::sqrt(static_cast<double>(p.numel() / p.size(0)));
    } else {
      values = values * 0.5;
    }
    p.copy_(values);
  }
}

absl::Status WriteComponent(const fs::path& dir, const std::string& stem, torch::nn::Module& module,
                            const nlohmann::json& config, const std::string& config_name, torch::Dtype dtype) {
  return WriteComponentFiles(dir.string(), stem, nn::ModuleStateDict(module), config, config_name, dtype);
}

}  // namespace

absl::StatusOr<ModelPreset> ParseModelPreset(absl::string_view name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "tiny") return ModelPreset::kTiny;
  if (n == "small") return ModelPreset::kSmall;
  if (n == "ithq") return ModelPreset::kIthq;
  return absl::InvalidArgumentError(absl::StrCat("unknown model preset \"", name, "\"; expected tiny, small or ithq"));
}

absl::Status MakeRandomModel(const std::string& out_dir, const MakeModelOptions& options) {
  const fs::path root(out_dir);
  std::error_code ec;
  if (fs::exists(root / "model_index.json", ec)) {
    return absl::AlreadyExistsError(absl::StrCat(out_dir, " already holds a model (model_index.json)"));
  }
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kFloat16) {
    return absl::InvalidArgumentError("random models are stored in fp32 or fp16");
  }
  fs::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  const PresetConfigs c = ConfigsFor(options.preset);
  const nn::TensorPlacement cpu{torch::kCPU, torch::kFloat32};

  return CatchTorch(absl::StrCat("writing a random model to ", out_dir), [&] {
    torch::Generator gen = diffusion::MakeGenerator(torch::kCPU, options.seed);
    auto check = [](const absl::Status& s) { TORCH_CHECK(s.ok(), std::string(s.message())); };

    check(WriteJsonFile((root / "model_index.json").string(), TextPipelineIndex()));
    fs::create_directories(root / "scheduler");
    check(WriteJsonFile((root / "scheduler" / "scheduler_config.json").string(), c.scheduler.ToJson()));
    check(text::WriteTinyClipTokenizer((root / "tokenizer").string(), c.tokenizer_merges));
    text::ClipTextConfig text_config = c.text;
    if (options.preset != ModelPreset::kIthq) {
      auto tokenizer = text::ClipTokenizer::Load((root / "tokenizer").string());
      check(tokenizer.status());
      text_config.vocab_size = tokenizer->vocab_size();
    }
    {
      text::ClipTextModel text_encoder(text_config, cpu);
      Randomize(*text_encoder, gen);
      check(WriteComponent(root / "text_encoder", "model", *text_encoder, text_config.ToJson(), "config.json", options.dtype));
    }
    {
      model::Transformer2DModel transformer(c.transformer, cpu);
      Randomize(*transformer, gen);
      check(WriteComponent(root / "transformer", "diffusion_pytorch_model", *transformer, c.transformer.ToJson(),
                           "config.json", options.dtype));
    }
    {
      model::VqModel vqvae(c.vqvae, cpu);
      Randomize(*vqvae, gen);
      check(WriteComponent(root / "vqvae", "diffusion_pytorch_model", *vqvae, c.vqvae.ToJson(), "config.json",
                           options.dtype));
    }
    {
      torch::nn::Module holder;
      holder.register_parameter("embeddings", torch::empty({77, c.text.hidden_size}), false);
      Randomize(holder, gen);
      nlohmann::json config = {{"_class_name", "LearnedClassifierFreeSamplingEmbeddings"},
                               {"learnable", true},
                               {"hidden_size", c.text.hidden_size},
                               {"length", 77}};
      check(WriteComponent(root / "learned_classifier_free_sampling_embeddings", "diffusion_pytorch_model", holder,
                           config, "config.json", options.dtype));
    }
  });
}

}  // namespace vqd::pipeline
