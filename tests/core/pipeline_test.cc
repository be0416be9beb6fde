// The pipeline's behaviour on edge cases and bad model directories, on the project's own tiny
// random model (no reference data needed).
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/test_model.h"
#include "diffusion/gumbel_sampler.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "pipeline/edit_start.h"
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

// Fixed-count unmasking: after each step t > 0 exactly the planned number of tokens more is known
// (the plan's counts, which add up to the grid), nothing is masked at the end, and the images are
// the decode of the tokens; with a time stride as well.
TEST_F(PipelineTest, PriorRulesUnmaskThePlannedCountEveryStep) {
  const PipelineInfo& info = pipe_->info();
  for (const auto& [rule, stride] : {std::pair{diffusion::PriorRule::kPurity, int64_t{1}},
                                     std::pair{diffusion::PriorRule::kUniform, int64_t{4}}}) {
    GenerateParams p;
    p.prompt = "a red car";
    p.num_images = 2;
    p.seed = 3;
    p.prior_rule = rule;
    p.prior_weight = rule == diffusion::PriorRule::kPurity ? 1.0f : 0.0f;
    p.time_stride = stride;
    p.steps = *StepsForStride(std::nullopt, stride, info);
    auto r = Generate(*pipe_, p, {}, /*keep_step_tokens=*/true);
    ASSERT_TRUE(r.ok()) << r.status();
    const std::vector<diffusion::PlannedStep> plan = PlanSteps(p.steps, stride, info);
    ASSERT_EQ(r->step_tokens.size(), plan.size());
    std::vector<int64_t> masked(2, info.num_latent_pixels);
    for (size_t s = 0; s < plan.size(); ++s) {
      for (int64_t i = 0; i < 2; ++i) {
        const int64_t now = r->step_tokens[s][i].eq(info.codebook_size).sum().item<int64_t>();
        const int64_t expected = plan[s].timestep == 0 ? 0 : std::max<int64_t>(0, masked[i] - plan[s].unmask_count);
        EXPECT_EQ(now, expected) << diffusion::PriorRuleName(rule) << " step " << s << " t=" << plan[s].timestep;
        masked[i] = now;
      }
    }
    ExpectValidImages(*pipe_, *r, 2);
  }
}

// A 32x32 (the tiny model's size) image: smooth colour gradients, and a mask PNG whose left half
// is white (regenerate) and right half black (keep).
std::string TestImagePng(const PipelineInfo& info) {
  std::vector<uint8_t> pixels;
  for (int64_t y = 0; y < info.image_height; ++y) {
    for (int64_t x = 0; x < info.image_width; ++x) {
      pixels.insert(pixels.end(), {static_cast<uint8_t>(8 * x), static_cast<uint8_t>(8 * y), static_cast<uint8_t>(128)});
    }
  }
  return *io::EncodePng(pixels.data(), static_cast<int>(info.image_width), static_cast<int>(info.image_height), 3);
}

PipelineInfo Sized(int64_t width, int64_t height) {
  PipelineInfo info;
  info.image_width = width;
  info.image_height = height;
  return info;
}

std::string HalfMaskPng(const PipelineInfo& info, uint8_t left = 255, uint8_t right = 0) {
  std::vector<uint8_t> pixels;
  for (int64_t y = 0; y < info.image_height; ++y) {
    for (int64_t x = 0; x < info.image_width; ++x) pixels.insert(pixels.end(), 3, x < info.image_width / 2 ? left : right);
  }
  return *io::EncodePng(pixels.data(), static_cast<int>(info.image_width), static_cast<int>(info.image_height), 3);
}

TEST_F(PipelineTest, InpaintingHoldsTheTokensOutsideTheMaskAtEveryStep) {
  const PipelineInfo& info = pipe_->info();
  auto edit = std::make_shared<EditInput>();
  edit->image = *EditImageFromPng(TestImagePng(info), info, "init_image");
  auto regenerate = RegenerateMaskFromPng(HalfMaskPng(info), info, "mask");
  ASSERT_TRUE(regenerate.ok()) << regenerate.status();
  edit->regenerate = *regenerate;
  // The left half of every token row regenerates: grid columns [0, gw/2).
  const torch::Tensor columns = torch::arange(info.num_latent_pixels) % info.grid_width;
  ASSERT_TRUE(torch::equal(edit->regenerate, columns < info.grid_width / 2));
  edit->strength = 0.5f;
  GenerateParams p;
  p.prompt = "a red car";
  p.num_images = 2;
  p.seed = 4;
  p.edit = edit;
  p.steps = 50;  // int(100 * 0.5)
  std::vector<int64_t> timesteps;
  auto r = Generate(*pipe_, p, [&](int64_t, int64_t t, const torch::Tensor&) { timesteps.push_back(t); }, true);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(timesteps.size(), 50u);
  EXPECT_EQ(timesteps.front(), 49);
  EXPECT_EQ(timesteps.back(), 0);
  const torch::Tensor encoded = *pipe_->EncodeImage(edit->image.unsqueeze(0));  // [1, N]
  const torch::Tensor keep = edit->regenerate.logical_not();
  for (size_t s = 0; s < r->step_tokens.size(); ++s) {
    for (int64_t i = 0; i < 2; ++i) {
      EXPECT_TRUE(torch::equal(r->step_tokens[s][i].masked_select(keep), encoded[0].masked_select(keep))) << "step " << s;
    }
  }
  // Inside the mask the prompt generated something of its own.
  EXPECT_FALSE(torch::equal(r->tokens[0].masked_select(edit->regenerate), encoded[0].masked_select(edit->regenerate)));
  ExpectValidImages(*pipe_, *r, 2);

  // The wrong step count for the strength is refused, naming both.
  p.steps = 40;
  auto wrong = Generate(*pipe_, p);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("leave steps unset or set it to 50"), std::string::npos) << wrong.status();
}

TEST_F(PipelineTest, EditStartsFromTheNoisedEncodingOfTheImage) {
  const PipelineInfo& info = pipe_->info();
  auto edit = std::make_shared<EditInput>();
  edit->image = *EditImageFromPng(TestImagePng(info), info, "init_image");
  edit->strength = 0.05f;  // 5 steps from t = 4: most tokens survive the noising
  const torch::Tensor encoded = *pipe_->EncodeImage(edit->image.unsqueeze(0));
  torch::Generator g = diffusion::MakeGenerator(torch::kCPU, 9);
  auto start = PrepareEdit(*pipe_, *edit, 1, 4, g);
  ASSERT_TRUE(start.ok()) << start.status();
  const double same = start->tokens.eq(encoded).to(torch::kFloat64).mean().item<double>();
  EXPECT_GT(same, 0.5) << "at t = 4 most tokens are still the image's";
  EXPECT_LT(same, 1.0) << "q(x_t | x_0) changed nothing";
  EXPECT_FALSE(start->known.defined());
  // At the end of a full-strength chain the noise masks nearly everything.
  torch::Generator g2 = diffusion::MakeGenerator(torch::kCPU, 9);
  auto full = PrepareEdit(*pipe_, *edit, 1, info.num_train_timesteps - 1, g2);
  ASSERT_TRUE(full.ok());
  EXPECT_GT(full->tokens.eq(info.codebook_size).to(torch::kFloat64).mean().item<double>(), 0.5);
  EXPECT_FALSE(EditChainLength(0.001f, info).ok());  // int(100 * 0.001) = 0 steps
  EXPECT_FALSE(EditChainLength(1.5f, info).ok());
}

TEST_F(PipelineTest, EditInputsAreCheckedAndNamed) {
  const PipelineInfo& info = pipe_->info();
  auto bad_size = EditImageFromPng(HalfMaskPng(Sized(16, 16)), info, "init_image");
  ASSERT_FALSE(bad_size.ok());
  EXPECT_EQ(bad_size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_size.status().message().rfind("init_image: is 16x16", 0), 0u) << bad_size.status();
  auto not_png = EditImageFromPng("not a png", info, "init_image");
  ASSERT_FALSE(not_png.ok());
  EXPECT_EQ(not_png.status().message().rfind("init_image: is not a PNG", 0), 0u) << not_png.status();
  auto gray_mask = RegenerateMaskFromPng(HalfMaskPng(info, 255, 128), info, "mask");
  ASSERT_FALSE(gray_mask.ok());
  EXPECT_EQ(gray_mask.status().message().rfind("mask: must be black", 0), 0u) << gray_mask.status();
  auto small_mask = RegenerateMaskFromPng(HalfMaskPng(Sized(32, 8)), info, "mask");
  ASSERT_FALSE(small_mask.ok());
  EXPECT_EQ(small_mask.status().message().rfind("mask: is 32x8", 0), 0u) << small_mask.status();
}

// Previews every 10 of 30 steps (not after the last): each is the decode of the step's grid with
// its masked positions filled by the argmax of that step's log p(x_0), recomputed here step by
// step with the same seed.
TEST_F(PipelineTest, PreviewsShowTheStepsPredictionEveryKSteps) {
  const PipelineInfo& info = pipe_->info();
  GenerateParams p;
  p.prompt = "a red car";
  p.num_images = 2;
  p.steps = 30;
  p.seed = 8;
  p.preview_interval = 10;
  std::map<int64_t, PreviewImages> previews;
  auto r = Generate(*pipe_, p, {}, false, [&](int64_t step, int64_t, const PreviewImages& images) {
    previews[step] = images;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(previews.size(), 2u);
  ASSERT_TRUE(previews.count(10) && previews.count(20));

  SampleGroup g;
  g.prompt = *pipe_->EncodePrompt(p.prompt);
  g.tokens = pipe_->MaskedTokens(2);
  g.guidance_scale = p.guidance_scale;
  g.truncation_rate = p.truncation_rate;
  torch::Generator gen = diffusion::MakeGenerator(torch::kCPU, p.seed);
  g.generator = &gen;
  std::vector<SampleGroup*> batch = {&g};
  for (int64_t step = 1; step <= 20; ++step) {
    torch::Tensor log_p;
    g.timestep = p.steps - step;
    g.log_p_x_0_out = &log_p;
    ASSERT_TRUE(pipe_->DenoiseStep(batch).ok());
    if (step % 10 != 0) continue;
    const torch::Tensor grids = torch::where(g.tokens.eq(info.codebook_size), log_p.argmax(1), g.tokens);
    const torch::Tensor expected = ImagesToUint8(*pipe_->Decode(grids), torch::kFloat32);
    const PreviewImages& got = previews[step];
    ASSERT_EQ(got.pngs.size(), 2u);
    EXPECT_EQ(got.width, info.image_width);  // 32 pixels: already small, not shrunk
    for (int64_t i = 0; i < 2; ++i) {
      auto png = io::DecodePng(got.pngs[static_cast<size_t>(i)]);
      ASSERT_TRUE(png.ok()) << png.status();
      const torch::Tensor pixels =
          torch::from_blob(png->pixels.data(), {png->height, png->width, png->channels}, torch::kUInt8).narrow(2, 0, 3);
      EXPECT_TRUE(torch::equal(pixels, expected[i])) << "step " << step << " image " << i;
    }
  }
  EXPECT_TRUE(PreviewDue(10, 10, 30) && !PreviewDue(10, 30, 30) && !PreviewDue(0, 10, 30) && !PreviewDue(10, 15, 30));
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
