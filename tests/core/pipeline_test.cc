// The pipeline's behaviour on edge cases and bad model directories, on the project's own tiny
// random model (no reference data needed).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_model.h"
#include "diffusion/gumbel_sampler.h"
#include "io/safetensors.h"
#include "pipeline/generate.h"

namespace vqd::pipeline {
namespace {
namespace fs = std::filesystem;

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto loaded = VqDiffusionPipeline::Load(testing::TinyRandomModelDir(), {});
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    pipe_ = std::move(*loaded).release();
  }
  static void TearDownTestSuite() { delete pipe_; }

  static GenerateResult Run(GenerateParams params) {
    auto result = Generate(*pipe_, params);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? std::move(*result) : GenerateResult{};
  }

  // A copy of the tiny model that a test may damage.
  static std::string CopyModel(const std::string& name) {
    const fs::path dst = fs::path(testing::TestScratchDir()) / name;
    fs::remove_all(dst);
    fs::copy(testing::TinyRandomModelDir(), dst, fs::copy_options::recursive);
    return dst.string();
  }

  static VqDiffusionPipeline* pipe_;
};
VqDiffusionPipeline* PipelineTest::pipe_ = nullptr;

// The images are the decode of the returned tokens: compared with the VQ-VAE run directly on
// them (codebook lookup, decoder, [-1, 1] -> [0, 1]), not only checked to be finite.
void ExpectValidImages(VqDiffusionPipeline& pipe, const GenerateResult& r, int64_t n) {
  const PipelineInfo& info = pipe.info();
  ASSERT_EQ(r.images.sizes(), (std::vector<int64_t>{n, info.image_height, info.image_width, 3}));
  ASSERT_GE(r.tokens.min().item<int64_t>(), 0);
  ASSERT_LT(r.tokens.max().item<int64_t>(), info.codebook_size);  // nothing left masked
  torch::InferenceMode inference;
  const torch::Tensor z = pipe.vqvae()->Lookup(r.tokens, info.grid_height, info.grid_width);
  const torch::Tensor expected = (pipe.vqvae()->Decode(z) / 2 + 0.5).clamp(0, 1).permute({0, 2, 3, 1});
  EXPECT_TRUE(torch::allclose(r.images, expected, 1e-5, 1e-5))
      << "images differ from the decode of their tokens by " << (r.images - expected).abs().max().item<float>();
}

TEST_F(PipelineTest, EmptyPromptIsBosEosAndPadding) {
  auto encoding = pipe_->EncodePrompt("");
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  const auto& ids = (*encoding)->input_ids;
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids[0], pipe_->tokenizer().bos_id());
  EXPECT_EQ(ids[1], pipe_->tokenizer().eos_id());
  for (size_t i = 2; i < ids.size(); ++i) EXPECT_EQ(ids[i], pipe_->tokenizer().pad_id());
  GenerateParams p;
  p.steps = 5;
  ExpectValidImages(*pipe_, Run(p), 1);
}

TEST_F(PipelineTest, LongPromptIsCutTo77IdsEndingWithEos) {
  std::string prompt;
  while (prompt.size() < 300) prompt += "a photo of a red car near the sea ";
  prompt.resize(300);
  auto encoding = pipe_->EncodePrompt(prompt);
  ASSERT_TRUE(encoding.ok());
  EXPECT_TRUE((*encoding)->truncated());
  EXPECT_EQ((*encoding)->input_ids.size(), 77u);
  // transformers 5 truncates before adding the special tokens, so the EOS stays (parity data).
  EXPECT_EQ((*encoding)->input_ids.back(), pipe_->tokenizer().eos_id());
  GenerateParams p;
  p.prompt = prompt;
  p.steps = 3;
  ExpectValidImages(*pipe_, Run(p), 1);
}

TEST_F(PipelineTest, TruncationRatesAndNoGuidanceProduceValidImages) {
  for (float rate : {0.5f, 1.0f}) {
    for (float guidance : {1.0f, 5.0f}) {
      GenerateParams p;
      p.prompt = "a dog";
      p.steps = 8;
      p.truncation_rate = rate;
      p.guidance_scale = guidance;
      p.num_images = 2;
      ExpectValidImages(*pipe_, Run(p), 2);
    }
  }
}

TEST_F(PipelineTest, LowTruncationKeepsOnlyTheMostLikelyClasses) {
  GenerateParams p;
  p.prompt = "a cat";
  p.steps = 2;
  p.truncation_rate = 1e-6f;  // only the top class survives anywhere
  GenerateResult r = Run(p);
  const torch::Tensor kept = r.first_log_p_x_0 > -70.0f;  // [1, K, N]
  EXPECT_TRUE(torch::equal(kept.sum(1), torch::ones({1, pipe_->info().num_latent_pixels}, torch::kLong)));
}

TEST_F(PipelineTest, OneStepAndAllStepsOfTheSchedule) {
  GenerateParams p;
  p.prompt = "a bowl of fruit";
  p.steps = 1;
  ExpectValidImages(*pipe_, Run(p), 1);
  p.steps = pipe_->info().num_train_timesteps;  // 100
  ExpectValidImages(*pipe_, Run(p), 1);
}

TEST_F(PipelineTest, MoreStepsThanTheScheduleIsAClearError) {
  GenerateParams p;
  p.steps = pipe_->info().num_train_timesteps + 1;
  auto result = Generate(*pipe_, p);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("steps must be in [1, 100]"), std::string::npos) << result.status();
  p.steps = 0;
  EXPECT_EQ(Generate(*pipe_, p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PipelineTest, BadParametersAreRejected) {
  GenerateParams p;
  p.truncation_rate = 0.0f;
  EXPECT_EQ(Generate(*pipe_, p).status().code(), absl::StatusCode::kInvalidArgument);
  p.truncation_rate = 1.5f;
  EXPECT_EQ(Generate(*pipe_, p).status().code(), absl::StatusCode::kInvalidArgument);
  p.truncation_rate = 1.0f;
  p.guidance_scale = std::nanf("");
  EXPECT_EQ(Generate(*pipe_, p).status().code(), absl::StatusCode::kInvalidArgument);
  p.guidance_scale = -1.0f;
  EXPECT_EQ(Generate(*pipe_, p).status().code(), absl::StatusCode::kInvalidArgument);
  p.guidance_scale = 5.0f;
  p.num_images = 0;
  EXPECT_EQ(Generate(*pipe_, p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PipelineTest, SameSeedSameImagesOtherSeedOtherImages) {
  GenerateParams p;
  p.prompt = "a red car";
  p.steps = 10;
  p.seed = 5;
  GenerateResult a = Run(p), b = Run(p);
  EXPECT_TRUE(torch::equal(a.tokens, b.tokens));
  p.seed = 6;
  EXPECT_FALSE(torch::equal(a.tokens, Run(p).tokens));
}

TEST_F(PipelineTest, BatchedStepGivesEachGroupWhatItGetsAlone) {
  // Three requests at different timesteps, guidance and truncation, stepped together and alone.
  struct Req {
    std::string prompt;
    int64_t n, t;
    float guidance, rate;
    uint64_t seed;
  };
  const std::vector<Req> reqs = {{"a red car", 2, 9, 5.0f, 1.0f, 1}, {"a dog", 1, 3, 1.0f, 0.8f, 2},
                                 {"the sea", 1, 0, 3.0f, 0.9f, 3}};
  auto make_groups = [&](std::vector<SampleGroup>& groups, std::vector<torch::Generator>& gens) {
    groups.clear();
    gens.clear();
    for (const Req& r : reqs) gens.push_back(diffusion::MakeGenerator(torch::kCPU, r.seed));
    for (size_t i = 0; i < reqs.size(); ++i) {
      SampleGroup g;
      g.prompt = *pipe_->EncodePrompt(reqs[i].prompt);
      // Partly unmasked grids, as in the middle of a run.
      torch::Generator tg = diffusion::MakeGenerator(torch::kCPU, 100 + i);
      torch::Tensor grid = torch::randint(0, pipe_->info().codebook_size + 1, {reqs[i].n, pipe_->info().num_latent_pixels}, tg);
      g.tokens = grid;
      g.timestep = reqs[i].t;
      g.guidance_scale = reqs[i].guidance;
      g.truncation_rate = reqs[i].rate;
      groups.push_back(g);
    }
    for (size_t i = 0; i < groups.size(); ++i) groups[i].generator = &gens[i];
  };
  std::vector<SampleGroup> together, alone;
  std::vector<torch::Generator> gens_together, gens_alone;
  make_groups(together, gens_together);
  make_groups(alone, gens_alone);
  for (int step = 0; step < 3; ++step) {
    std::vector<SampleGroup*> batch;
    for (auto& g : together) batch.push_back(&g);
    ASSERT_TRUE(pipe_->DenoiseStep(batch).ok());
    for (auto& g : alone) {
      std::vector<SampleGroup*> single = {&g};
      ASSERT_TRUE(pipe_->DenoiseStep(single).ok());
    }
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_TRUE(torch::equal(together[i].tokens, alone[i].tokens)) << "group " << i << " step " << step;
    }
    for (size_t i = 0; i < reqs.size(); ++i) {
      together[i].timestep = alone[i].timestep = std::max<int64_t>(0, together[i].timestep - 1);
    }
  }
}

TEST_F(PipelineTest, DecodeRejectsMaskedTokensAndWrongShapes) {
  EXPECT_FALSE(pipe_->Decode(pipe_->MaskedTokens(1)).ok());
  EXPECT_EQ(pipe_->Decode(torch::zeros({1, 3}, torch::kInt64)).status().code(), absl::StatusCode::kInvalidArgument);
}

// The nearest codebook entry of each latent position, in float64 by brute force: an independent
// computation of what the quantizer should return (first index on ties, as torch.argmin).
torch::Tensor NearestCodes(const torch::Tensor& latents, const torch::Tensor& codebook) {
  const torch::Tensor z = latents.to(torch::kFloat64).flatten(2).transpose(1, 2);           // [B, N, D]
  const torch::Tensor e = codebook.to(torch::kFloat64);                                      // [K, D]
  const torch::Tensor d = (z.unsqueeze(2) - e.unsqueeze(0).unsqueeze(0)).pow(2).sum(-1);    // [B, N, K]
  return d.argmin(-1);
}

TEST_F(PipelineTest, TokensRoundTripThroughTheCodebook) {
  // tokens -> codebook vectors -> nearest code gives the tokens back: the quantizer inverts the
  // lookup exactly.
  torch::InferenceMode inference;
  const PipelineInfo& info = pipe_->info();
  const torch::Tensor tokens = torch::randint(0, info.codebook_size, {3, info.num_latent_pixels},
                                              torch::TensorOptions().dtype(torch::kInt64));
  const torch::Tensor z = pipe_->vqvae()->Lookup(tokens, info.grid_height, info.grid_width);
  const torch::Tensor back = pipe_->vqvae()->quantize->Encode(z);
  ASSERT_EQ(back.sizes(), tokens.sizes());
  EXPECT_EQ(back.ne(tokens).sum().item<int64_t>(), 0) << "tokens changed by lookup + quantize";
}

TEST_F(PipelineTest, EncodeImageGivesTheNearestCodesOfTheEncoderLatents) {
  // A random VQ-VAE's encoder does not invert its decoder, so encode(decode(tokens)) is not the
  // tokens here; the encoded tokens are compared, exactly, with the nearest codebook entries of
  // the encoder's latents computed independently (images in [0, 1] -> [-1, 1], NHWC -> NCHW).
  GenerateParams p;
  p.prompt = "a house";
  p.steps = 4;
  p.num_images = 2;
  GenerateResult r = Run(p);
  auto tokens = pipe_->EncodeImage(r.images);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  ASSERT_EQ(tokens->sizes(), r.tokens.sizes());
  torch::InferenceMode inference;
  const torch::Tensor latents = pipe_->vqvae()->EncodeLatents(r.images.permute({0, 3, 1, 2}) * 2 - 1);
  const torch::Tensor expected = NearestCodes(latents, pipe_->vqvae()->quantize->embedding->weight);
  EXPECT_EQ(tokens->ne(expected).sum().item<int64_t>(), 0)
      << "encoded tokens differ from the nearest codes: " << *tokens << " vs " << expected;
}

TEST_F(PipelineTest, WrongShapeWeightsNameTheTensorAndShapes) {
  const std::string dir = CopyModel("wrong-shape");
  const std::string file = dir + "/transformer/diffusion_pytorch_model.safetensors";
  auto tensors = io::ReadSafetensors(file);
  ASSERT_TRUE(tensors.ok());
  io::TensorMap changed;
  for (const auto& [k, v] : *tensors) changed[k] = v.clone();
  changed["out.weight"] = torch::zeros({3, 32});
  ASSERT_TRUE(io::WriteSafetensors(file, changed).ok());
  auto loaded = VqDiffusionPipeline::Load(dir, {});
  ASSERT_FALSE(loaded.ok());
  const std::string msg(loaded.status().message());
  EXPECT_NE(msg.find("out.weight expected [16, 32] got [3, 32]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("diffusion_pytorch_model.safetensors"), std::string::npos) << msg;
}

TEST_F(PipelineTest, MissingTensorIsNamed) {
  const std::string dir = CopyModel("missing-tensor");
  const std::string file = dir + "/vqvae/diffusion_pytorch_model.safetensors";
  auto tensors = io::ReadSafetensors(file);
  ASSERT_TRUE(tensors.ok());
  io::TensorMap changed;
  for (const auto& [k, v] : *tensors) {
    if (k != "decoder.conv_out.bias") changed[k] = v.clone();
  }
  ASSERT_TRUE(io::WriteSafetensors(file, changed).ok());
  auto loaded = VqDiffusionPipeline::Load(dir, {});
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("missing (decoder.conv_out.bias)"), std::string::npos) << loaded.status();
}

TEST_F(PipelineTest, TruncatedWeightsFileIsAClearError) {
  const std::string dir = CopyModel("truncated");
  const std::string file = dir + "/transformer/diffusion_pytorch_model.safetensors";
  fs::resize_file(file, fs::file_size(file) / 2);
  auto loaded = VqDiffusionPipeline::Load(dir, {});
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("diffusion_pytorch_model.safetensors"), std::string::npos) << loaded.status();
}

TEST_F(PipelineTest, MissingConfigKeyNamesFileAndKey) {
  const std::string dir = CopyModel("missing-key");
  const std::string path = dir + "/transformer/config.json";
  nlohmann::json config = nlohmann::json::parse(std::ifstream(path));
  config.erase("num_vector_embeds");
  std::ofstream(path) << config.dump();
  auto loaded = VqDiffusionPipeline::Load(dir, {});
  ASSERT_FALSE(loaded.ok());
  const std::string msg(loaded.status().message());
  EXPECT_NE(msg.find("transformer/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("num_vector_embeds"), std::string::npos) << msg;
}

TEST_F(PipelineTest, NotAModelDirectory) {
  auto loaded = VqDiffusionPipeline::Load("/nonexistent/model", {});
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PipelineTest, OldFp16BranchLayoutFallsBackToEmptyPromptGuidance) {
  // The hub's old fp16 branch: no learned null-embedding component at all.
  const std::string dir = CopyModel("no-learned");
  fs::remove_all(dir + "/learned_classifier_free_sampling_embeddings");
  nlohmann::json index = nlohmann::json::parse(std::ifstream(dir + "/model_index.json"));
  index.erase("learned_classifier_free_sampling_embeddings");
  std::ofstream(dir + "/model_index.json") << index.dump();
  auto loaded = VqDiffusionPipeline::Load(dir, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE((*loaded)->info().learned_null_embeddings);
  // The null embedding is then the normalised encoding of "".
  auto empty = (*loaded)->EncodePrompt("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(torch::allclose((*loaded)->null_embeddings(), (*empty)->embeddings));
  GenerateParams p;
  p.prompt = "a cat";
  p.steps = 4;
  auto result = Generate(**loaded, p);
  ASSERT_TRUE(result.ok()) << result.status();
}

TEST_F(PipelineTest, LegacyVaeAttentionNamesLoad) {
  const std::string dir = CopyModel("legacy-vae");
  const std::string file = dir + "/vqvae/diffusion_pytorch_model.safetensors";
  auto tensors = io::ReadSafetensors(file);
  ASSERT_TRUE(tensors.ok());
  io::TensorMap renamed;
  for (const auto& [k, v] : *tensors) {
    std::string key = k;
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}}) {
      if (auto pos = key.find(from); pos != std::string::npos) key.replace(pos, from.size(), to);
    }
    renamed[key] = v.clone();
  }
  ASSERT_TRUE(io::WriteSafetensors(file, renamed).ok());
  auto loaded = VqDiffusionPipeline::Load(dir, {});
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  GenerateParams p;
  p.steps = 3;
  auto a = Generate(**loaded, p);
  auto b = Generate(*pipe_, p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(torch::equal(a->images, b->images));
}

}  // namespace
}  // namespace vqd::pipeline
