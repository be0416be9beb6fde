// Ref: diffusers/pipelines/deprecated/vq_diffusion/pipeline_vq_diffusion.py (VQDiffusionPipeline),
// split into the pieces a step-level batching engine drives: encode a prompt (or class label) once,
// run one denoising step for a batch of samples that are each at their own timestep with their own
// guidance, truncation and generator, and decode finished token grids. Models converted from the
// official microsoft/VQ-Diffusion checkpoints run the official sampling arithmetic instead of
// diffusers' (vqd_model.json says which), and class-conditional ones take a class label.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "diffusion/official_sampling.h"
#include "diffusion/prior_sampling.h"
#include "diffusion/vq_schedule.h"
#include "model/class_transformer.h"
#include "model/transformer_2d.h"
#include "model/vq_model.h"
#include "pipeline/class_denoiser.h"
#include "pipeline/model_directory.h"
#include "pipeline/prompt_encoding.h"
#include "pipeline/text_denoiser.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"

namespace vqd::pipeline {

struct PipelineOptions {
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  // Weights files to prefer: "fp16" or "" (full precision). Unset: fp16 files for float16.
  std::optional<std::string> variant;
  // The fast path: fused kernels (CUDA), the log-softmax token-major in float32, the step's
  // metadata uploaded without blocking, the posterior and Gumbel-max fused. Unset: on for CUDA in
  // float16 or bfloat16, off otherwise; float32 keeps the reference path, which matches diffusers.
  // On the CPU the fast path runs the kernels' libtorch references (tests).
  std::optional<bool> fused;
  // With the fast path: transformer passes of up to this many rows run padded to a row bucket
  // through static buffers, on CUDA as one CUDA graph per bucket, all captured by Load() (so the
  // first request pays nothing). 0: no buckets. The engine sets its row budget here.
  int64_t graph_max_rows = 0;
  // Whether the buckets are captured as CUDA graphs (on CUDA); off: the same padded passes eagerly.
  bool cuda_graphs = true;
};

// What a client may want to know about the loaded model.
struct PipelineInfo {
  std::string model_name;
  std::string model_dir;
  int64_t grid_height = 0, grid_width = 0;  // token grid
  int64_t num_latent_pixels = 0;             // grid_height * grid_width
  int64_t codebook_size = 0;                 // K; the mask token is K
  // The most steps a request may ask for: the schedule's length, or the transformer's timestep
  // table if that is smaller.
  int64_t num_train_timesteps = 0;
  int64_t image_height = 0, image_width = 0;
  int64_t max_prompt_tokens = 0;             // ids the text encoder sees, BOS and EOS included (text models)
  bool learned_null_embeddings = false;      // false: guidance uses the empty prompt (or the mean class)
  Conditioning conditioning = Conditioning::kText;
  int64_t num_classes = 0;                   // class-conditional models: labels are [0, num_classes)
  Sampler sampler = Sampler::kDiffusers;
  // What a request that leaves guidance or truncation unset gets: the checkpoint's official
  // defaults for converted models, diffusers' (5.0 and 1.0) otherwise.
  float default_guidance_scale = 5.0f;
  float default_truncation_rate = 1.0f;
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  int64_t transformer_parameters = 0, vqvae_parameters = 0, text_encoder_parameters = 0;
  double load_seconds = 0;
  bool fused = false;                // the fast path (PipelineOptions::fused)
  std::vector<int64_t> row_buckets;  // its row buckets; empty: eager
  bool cuda_graphs = false;          // the buckets run as captured CUDA graphs
};

// One request's images at one denoising step. DenoiseStep replaces `tokens` with x_{t-1}.
struct SampleGroup {
  std::shared_ptr<const PromptEncoding> prompt;
  torch::Tensor tokens;            // [n, N] int64 on the pipeline's device: x_t
  int64_t timestep = 0;            // t, in [0, num_train_timesteps): the transformer's
  // The posterior that samples the next state is taken at this index (strided sampling,
  // diffusion/sampling_plan.h); 0 samples p(x_0). Unset: `timestep`, as diffusers.
  std::optional<int64_t> posterior_timestep;
  // Fixed-count unmasking (Improved VQ-Diffusion; diffusion/prior_sampling.h): at t > 0 the step
  // unmasks exactly unmask_count tokens per image instead of sampling the posterior.
  diffusion::PriorRule prior_rule = diffusion::PriorRule::kNone;
  float prior_weight = 0.0f;
  int64_t unmask_count = 0;
  // Inpainting: where `known` ([n, N] bool) is set, the tokens are held to known_tokens after
  // every step (the image outside the mask). Undefined: nothing is held.
  torch::Tensor known_tokens, known;
  float guidance_scale = 5.0f;     // guidance is on iff > 1, as in diffusers
  float truncation_rate = 1.0f;    // in (0, 1]
  torch::Generator* generator = nullptr;  // the request's, on the pipeline's device
  // When set, receives the guided, truncated and clamped log p(x_0 | x_t) [n, K, N] (tests, tools);
  // with the official sampler [n, K + 1, N], the mask row included, as the official code has it.
  torch::Tensor* log_p_x_0_out = nullptr;
  // When set, receives argmax_k log p(x_0 = k | x_t) [n, N] int64 over the codes (live previews).
  torch::Tensor* x0_argmax_out = nullptr;

  bool guided() const { return guidance_scale > 1.0f; }
  int64_t posterior_t() const { return posterior_timestep.value_or(timestep); }
};

class TransformerRunner;

class VqDiffusionPipeline {
 public:
  static absl::StatusOr<std::unique_ptr<VqDiffusionPipeline>> Load(const std::string& model_dir,
                                                                  const PipelineOptions& options);
  ~VqDiffusionPipeline();

  const PipelineInfo& info() const { return info_; }
  const text::ClipTokenizer& tokenizer() const { return text().tokenizer(); }
  const diffusion::VqSchedule& schedule() const { return schedule_; }  // on the device

  // Text models: tokenises (first 77 ids, as diffusers) and encodes a prompt, and projects it for
  // the transformer's cross-attention.
  absl::StatusOr<std::shared_ptr<const PromptEncoding>> EncodePrompt(absl::string_view prompt);
  // Class-conditional models: a request's class label.
  absl::StatusOr<std::shared_ptr<const PromptEncoding>> EncodeClassLabel(int64_t label);
  // What a request is conditioned on, for either kind of model: the label when it has one, else the
  // prompt. Asking a text model for a label or a class model for a prompt is InvalidArgument naming
  // the field.
  absl::StatusOr<std::shared_ptr<const PromptEncoding>> EncodeCondition(absl::string_view prompt,
                                                                       std::optional<int64_t> class_label);
  // text_encoder(ids).last_hidden_state, L2-normalised per token: [P, 77, C] (parity tests).
  absl::StatusOr<torch::Tensor> EncodeIds(const torch::Tensor& input_ids);
  // The unconditional embeddings guidance uses: the learned null embedding, or the encoded empty
  // prompt (text models).
  const torch::Tensor& null_embeddings() const { return text().null_embeddings(); }  // [1, 77, C]

  // One denoising step for all groups in a single transformer pass: guidance for the guided
  // groups, truncation, then the posterior (t > 0) or p(x_0) (t = 0) sampled with each group's
  // own generator. A group's result depends only on the group, never on the rest of the batch
  // (up to the row-invariance of the device's matrix kernels; see README).
  absl::Status DenoiseStep(std::vector<SampleGroup*>& groups);

  // Transformer rows a group costs (2 per image with guidance).
  static int64_t RowsFor(int64_t num_images, bool guided) { return guided ? 2 * num_images : num_images; }

  // Token grids [B, N] -> images [B, H, W, 3] float32 in [0, 1] on the CPU
  // (clamp(decode / 2 + 0.5, 0, 1), in the pipeline dtype before the final cast).
  absl::StatusOr<torch::Tensor> Decode(const torch::Tensor& tokens);
  // Images [B, H, W, 3] in [0, 1] -> token grids [B, N] through the VQ-VAE encoder and quantizer.
  absl::StatusOr<torch::Tensor> EncodeImage(const torch::Tensor& images);

  // The initial x_T of `n` images: every token masked.
  torch::Tensor MaskedTokens(int64_t n) const;
  // x_t drawn from q(x_t | x_0) for known tokens x_0 [n, N] (editing: the encoded image noised to
  // the edit's first timestep), with one uniform tensor [n, K + 1, N] from `generator`.
  absl::StatusOr<torch::Tensor> NoiseTokens(const torch::Tensor& x_0, int64_t t, torch::Generator& generator);

  // Direct access for tests and benchmarks. The text accessors need a text model, class_transformer
  // a class-conditional one (they throw otherwise), official_schedule a converted model.
  model::Transformer2DModel& transformer() { return text().transformer(); }
  model::ClassTransformer& class_transformer();
  model::VqModel& vqvae() { return vqvae_; }
  text::ClipTextModel& text_encoder() { return text().text_encoder(); }
  const model::TextContext& null_context() const { return text().null_context(); }
  const diffusion::OfficialSchedule& official_schedule() const;  // on the device
  TransformerRunner& transformer_runner();  // text models

 private:
  VqDiffusionPipeline() = default;
  absl::Status LoadComponents(const ModelDirectory& dir, const PipelineOptions& options);
  TextDenoiser& text() const;
  // The steps after the transformer pass, in the official code's arithmetic (official_denoise_step.cc).
  void OfficialSampleStep(std::vector<SampleGroup*>& groups, int64_t uncond_rows, const torch::Tensor& log_p);

  PipelineInfo info_;
  std::unique_ptr<TextDenoiser> text_;     // text models
  std::unique_ptr<ClassDenoiser> class_;   // class-conditional models
  ConditionalDenoiser* denoiser_ = nullptr;  // whichever of the two there is
  model::VqModel vqvae_{nullptr};
  diffusion::VqSchedule schedule_;
  std::optional<diffusion::OfficialSchedule> official_schedule_;  // the official sampler's
  std::unique_ptr<TransformerRunner> runner_;  // text models: the transformer passes of DenoiseStep
};

// Where a converted model keeps the official sampler's eight log schedules (the checkpoint's).
inline constexpr char kOfficialScheduleFile[] = "official_schedule.safetensors";  // in scheduler/

// Images in [0, 1] -> uint8 with round(x * 255) as the reference's numpy_to_pil computes it for a
// pipeline of `pipeline_dtype` (float16 arithmetic for float16 pipelines).
torch::Tensor ImagesToUint8(const torch::Tensor& images, torch::Dtype pipeline_dtype);

}  // namespace vqd::pipeline
