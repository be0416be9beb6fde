// The fast path around the kernels: the one-copy step upload, row buckets with padding and context
// slots, the fused forward against the reference, asynchronous grid downloads, and on a GPU the
// CUDA graphs and the absence of host stalls. On the CPU the fast path runs the kernels' libtorch
// references, so everything but the kernels and the graphs is exercised without a GPU.
#include <algorithm>
#include <chrono>

#include <gtest/gtest.h>
#include <torch/torch.h>

#ifdef VQD_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/Sleep.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "base/device_scope.h"
#include "common/test_model.h"
#include "diffusion/gumbel_sampler.h"
#include "kernel_test_util.h"
#include "pipeline/generate.h"
#include "pipeline/grid_download.h"
#include "pipeline/step_upload.h"
#include "pipeline/transformer_runner.h"

namespace vqd::pipeline {
namespace {

std::unique_ptr<VqDiffusionPipeline> Load(const PipelineOptions& options) {
  auto loaded = VqDiffusionPipeline::Load(testing::TinyRandomModelDir(), options);
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  return loaded.ok() ? std::move(*loaded) : nullptr;
}

PipelineOptions Options(torch::Device device, torch::Dtype dtype, bool fused, int64_t graph_rows,
                        bool graphs = true) {
  PipelineOptions o;
  o.device = device;
  o.dtype = dtype;
  o.fused = fused;
  o.graph_max_rows = graph_rows;
  o.cuda_graphs = graphs;
  return o;
}

TEST(StepUploadTest, PacksIntegersAndFloatsIntoOneBuffer) {
  StepUpload upload(torch::kCPU);
  const size_t a = upload.Add(std::vector<int64_t>{3, 1, 4});
  const size_t b = upload.Add(std::vector<float>{0.5f, -2.25f, 7.0f});
  const size_t c = upload.Add(std::vector<int64_t>{});
  const size_t d = upload.Add(std::vector<float>{1.5f});
  upload.Upload();
  EXPECT_TRUE(torch::equal(upload.Int64(a), torch::tensor({3, 1, 4}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(upload.Float(b), torch::tensor({0.5f, -2.25f, 7.0f})));
  EXPECT_EQ(upload.Int64(c).numel(), 0);
  EXPECT_TRUE(torch::equal(upload.Float(d), torch::tensor({1.5f})));
  EXPECT_EQ(upload.Float(b).scalar_type(), torch::kFloat32);
  EXPECT_THROW(upload.Float(a), c10::Error);
  EXPECT_FALSE(upload.pinned());
}

TEST(StepUploadTest, CudaUploadIsPinnedAndNonBlocking) {
  VQD_REQUIRE_CUDA("StepUpload's pinned copy");
  StepUpload upload(torch::Device(torch::kCUDA, 0));
  const size_t a = upload.Add(std::vector<int64_t>{5, 6});
  const size_t b = upload.Add(std::vector<float>{0.25f});
  upload.Upload();
  EXPECT_TRUE(upload.pinned());
  EXPECT_TRUE(torch::equal(upload.Int64(a).cpu(), torch::tensor({5, 6}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(upload.Float(b).cpu(), torch::tensor({0.25f})));
}

TEST(RowBucketsTest, SmallStepsThenEveryEightThenEverySixteen) {
  EXPECT_TRUE(RowBuckets(0).empty());
  EXPECT_EQ(RowBuckets(1), (std::vector<int64_t>{2}));
  EXPECT_EQ(RowBuckets(5), (std::vector<int64_t>{2, 4, 8}));
  EXPECT_EQ(RowBuckets(64), (std::vector<int64_t>{2, 4, 8, 16, 24, 32, 40, 48, 56, 64}));
  EXPECT_EQ(RowBuckets(100), (std::vector<int64_t>{2, 4, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112}));
}

TEST(GridDownloadTest, GridsAndMaskedFractionsOnTheCpu) {
  const torch::Tensor a = torch::tensor({{1, 16, 16, 2}}, torch::kInt64);
  const torch::Tensor b = torch::tensor({{16, 16, 16, 16}, {0, 1, 2, 3}}, torch::kInt64);
  GridDownload download = GridDownload::Start({a, b}, 16);
  EXPECT_TRUE(download.Ready());
  const GridDownload::Result& r = download.Wait();
  EXPECT_TRUE(torch::equal(r.grids, torch::cat({a, b}, 0)));
  ASSERT_EQ(r.masked_fraction.size(), 2u);
  EXPECT_EQ(r.masked_fraction[0], a.eq(16).to(torch::kFloat32).mean().item<float>());
  EXPECT_EQ(r.masked_fraction[1], b.eq(16).to(torch::kFloat32).mean().item<float>());
}

// Runs `steps` steps of three requests (different prompts, sizes, timesteps, guidance and
// truncation, one joining late and one leaving early) batched, and (with `alone`) each request
// alone too, expecting each request's grids to be the same either way. Returns the batched grids
// of every step.
std::vector<torch::Tensor> RunBatched(VqDiffusionPipeline& pipe, int steps, bool alone_too) {
  struct Req {
    std::string prompt;
    int64_t n, t;
    float guidance, rate;
    uint64_t seed;
    int first, last;  // steps it takes part in
  };
  const std::vector<Req> reqs = {{"a red car", 2, 9, 5.0f, 1.0f, 1, 0, steps - 1},
                                 {"a dog", 1, 6, 1.0f, 0.8f, 2, 1, steps - 1},
                                 {"the sea", 1, 4, 3.0f, 0.9f, 3, 0, 1}};
  const torch::Device device = pipe.info().device;
  auto make = [&](std::vector<SampleGroup>& groups, std::vector<torch::Generator>& gens) {
    groups.assign(reqs.size(), SampleGroup{});
    gens.clear();
    for (const Req& r : reqs) gens.push_back(diffusion::MakeGenerator(device, r.seed));
    for (size_t i = 0; i < reqs.size(); ++i) {
      groups[i].prompt = *pipe.EncodePrompt(reqs[i].prompt);
      torch::Generator tg = diffusion::MakeGenerator(torch::kCPU, 100 + i);
      groups[i].tokens =
          torch::randint(0, pipe.info().codebook_size + 1, {reqs[i].n, pipe.info().num_latent_pixels}, tg).to(device);
      groups[i].timestep = reqs[i].t;
      groups[i].guidance_scale = reqs[i].guidance;
      groups[i].truncation_rate = reqs[i].rate;
      groups[i].generator = &gens[i];
    }
  };
  std::vector<SampleGroup> together, alone;
  std::vector<torch::Generator> gens_together, gens_alone;
  make(together, gens_together);
  make(alone, gens_alone);
  std::vector<torch::Tensor> grids;
  for (int step = 0; step < steps; ++step) {
    std::vector<SampleGroup*> batch;
    for (size_t i = 0; i < reqs.size(); ++i) {
      if (step >= reqs[i].first && step <= reqs[i].last) batch.push_back(&together[i]);
    }
    EXPECT_TRUE(pipe.DenoiseStep(batch).ok());
    std::vector<torch::Tensor> step_grids;
    for (size_t i = 0; i < reqs.size(); ++i) {
      if (step < reqs[i].first || step > reqs[i].last) continue;
      step_grids.push_back(together[i].tokens.cpu());
      if (alone_too) {
        std::vector<SampleGroup*> single = {&alone[i]};
        EXPECT_TRUE(pipe.DenoiseStep(single).ok());
        EXPECT_TRUE(torch::equal(together[i].tokens.cpu(), alone[i].tokens.cpu())) << "request " << i << " step " << step;
      }
      together[i].timestep = alone[i].timestep = std::max<int64_t>(0, together[i].timestep - 1);
    }
    grids.push_back(torch::cat(step_grids, 0));
  }
  return grids;
}

TEST(FastPathTest, BucketedStepsGiveEachRequestWhatItGetsAloneOnTheCpu) {
  // Padding rows, context slots and the static buffers, with the kernels' CPU references.
  auto pipe = Load(Options(torch::kCPU, torch::kFloat32, /*fused=*/true, /*graph_rows=*/8));
  ASSERT_TRUE(pipe);
  EXPECT_TRUE(pipe->info().fused);
  EXPECT_EQ(pipe->info().row_buckets, (std::vector<int64_t>{2, 4, 8}));
  EXPECT_FALSE(pipe->info().cuda_graphs);
  RunBatched(*pipe, 4, /*alone_too=*/true);
  const auto& counters = pipe->transformer_runner().counters();
  EXPECT_GT(counters.bucketed_passes, 0);
  EXPECT_GT(counters.padded_rows, 0);
  EXPECT_GE(counters.slot_writes, 3);
}

TEST(FastPathTest, MorePromptsThanSlotsRunEagerlyWithTheSameResult) {
  auto bucketed = Load(Options(torch::kCPU, torch::kFloat32, true, 4));  // 4 rows: slots for 2 prompts
  auto eager = Load(Options(torch::kCPU, torch::kFloat32, true, 0));
  ASSERT_TRUE(bucketed && eager);
  EXPECT_EQ(bucketed->transformer_runner().slot_capacity(), 3);
  auto run = [](VqDiffusionPipeline& pipe) {
    std::vector<SampleGroup> groups(3);
    std::vector<torch::Generator> gens;
    for (int i = 0; i < 3; ++i) gens.push_back(diffusion::MakeGenerator(torch::kCPU, 10 + i));
    const char* prompts[] = {"one", "two", "three"};
    std::vector<SampleGroup*> batch;
    for (int i = 0; i < 3; ++i) {
      groups[i].prompt = *pipe.EncodePrompt(prompts[i]);
      groups[i].tokens = pipe.MaskedTokens(1);
      groups[i].timestep = 5;
      groups[i].guidance_scale = 1.0f;  // unguided: one row and one prompt each
      groups[i].generator = &gens[i];
      batch.push_back(&groups[i]);
    }
    EXPECT_TRUE(pipe.DenoiseStep(batch).ok());
    return torch::cat({groups[0].tokens, groups[1].tokens, groups[2].tokens}, 0);
  };
  EXPECT_TRUE(torch::equal(run(*bucketed), run(*eager)));
  EXPECT_EQ(bucketed->transformer_runner().counters().eager_passes, 1);  // 3 prompts, 2 free slots
}

TEST(FastPathTest, FusedForwardMatchesTheReferenceOnTheCpu) {
  auto pipe = Load(Options(torch::kCPU, torch::kFloat32, true, 0));
  ASSERT_TRUE(pipe);
  torch::InferenceMode inference;
  auto prompt = *pipe->EncodePrompt("a bowl of fruit");
  const int64_t n = pipe->info().num_latent_pixels;
  torch::Tensor tokens = torch::randint(0, pipe->info().codebook_size + 1, {3, n}, torch::kInt64);
  torch::Tensor t = torch::tensor({0, 17, 63}, torch::kInt64);
  std::vector<RowPiece> pieces = {{tokens, 0, prompt}};
  model::TextContext context = ConcatContext(pieces, pipe->null_context());
  auto& transformer = pipe->transformer();
  transformer->set_fused(false);
  const torch::Tensor reference = transformer(tokens, t, context);
  transformer->set_fused(true);
  const torch::Tensor fused = transformer(tokens, t, context);
  EXPECT_EQ(fused.sizes(), reference.sizes());
  EXPECT_EQ(fused.stride(1), 1) << "the fast path's log-probs are token-major";
  EXPECT_TRUE(testing::CloseTo("fused vs reference log-probs", fused, reference, {1e-4, 1e-5}));
}

TEST(FastPathTest, GenerateWithTheFastPathOnTheCpu) {
  auto pipe = Load(Options(torch::kCPU, torch::kFloat32, true, 4));
  ASSERT_TRUE(pipe);
  GenerateParams params;
  params.prompt = "a red car";
  params.steps = 6;
  params.num_images = 2;
  auto result = Generate(*pipe, params);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(result->tokens.max().item<int64_t>(), pipe->info().codebook_size);
  // Against the reference path with the same seed: its log-probs are within 1e-4 of the
  // reference's (FusedForwardMatchesTheReferenceOnTheCpu) and the draws use the same uniforms, so
  // the grids are the same, and the images are the reference VQ-VAE's decode of them.
  auto reference = Load(Options(torch::kCPU, torch::kFloat32, false, 0));
  ASSERT_TRUE(reference);
  auto expected = Generate(*reference, params);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(result->tokens.ne(expected->tokens).sum().item<int64_t>(), 0) << "grids differ from the reference path's";
  EXPECT_TRUE(testing::CloseTo("fast path images", result->images, expected->images, {1e-5, 1e-5}));
}

#ifdef VQD_WITH_CUDA
// Everything below needs a GPU: the CUDA graphs and the absence of host stalls.

const torch::Device kCuda(torch::kCUDA, 0);

TEST(FastPathCudaTest, GraphReplayEqualsTheSamePaddedPassRunEagerly) {
  VQD_REQUIRE_CUDA("the fast path's CUDA graphs");
  DeviceScope scope(kCuda);
  for (torch::Dtype dtype : {torch::kFloat16, torch::kBFloat16}) {
    auto graphs = Load(Options(kCuda, dtype, true, 8, /*graphs=*/true));
    auto eager = Load(Options(kCuda, dtype, true, 8, /*graphs=*/false));
    ASSERT_TRUE(graphs && eager);
    EXPECT_TRUE(graphs->info().cuda_graphs);
    EXPECT_FALSE(eager->info().cuda_graphs);
    // Requests joining and leaving, the same buckets at every step on both: bit for bit. (Across
    // buckets cuBLAS may pick other kernels for another M: no bitwise promise there.)
    const std::vector<torch::Tensor> a_grids = RunBatched(*graphs, 6, false), b_grids = RunBatched(*eager, 6, false);
    ASSERT_EQ(a_grids.size(), b_grids.size());
    for (size_t s = 0; s < a_grids.size(); ++s) EXPECT_TRUE(torch::equal(a_grids[s], b_grids[s])) << dtype << " step " << s;
    GenerateParams params;
    params.prompt = "a red car";
    params.steps = 8;
    params.num_images = 3;
    auto a = Generate(*graphs, params, {}, /*keep_step_tokens=*/true);
    auto b = Generate(*eager, params, {}, true);
    ASSERT_TRUE(a.ok() && b.ok());
    for (size_t s = 0; s < a->step_tokens.size(); ++s) {
      EXPECT_TRUE(torch::equal(a->step_tokens[s], b->step_tokens[s])) << dtype << " step " << s;
    }
    EXPECT_TRUE(torch::equal(a->first_log_p_x_0, b->first_log_p_x_0)) << dtype;
  }
}

TEST(FastPathCudaTest, PaddingDoesNotTouchRealRowsAndBuffersStayPut) {
  VQD_REQUIRE_CUDA("the fast path's CUDA graphs");
  DeviceScope scope(kCuda);
  auto pipe = Load(Options(kCuda, torch::kFloat16, true, 8));
  ASSERT_TRUE(pipe);
  torch::InferenceMode inference;
  TransformerRunner& runner = pipe->transformer_runner();
  auto prompt = *pipe->EncodePrompt("a dog");
  const int64_t n = pipe->info().num_latent_pixels;
  torch::Tensor tokens = torch::randint(0, pipe->info().codebook_size + 1, {3, n}, torch::TensorOptions().dtype(torch::kInt64).device(kCuda));
  torch::Tensor other = torch::randint(0, pipe->info().codebook_size, {1, n}, tokens.options());
  auto run = [&](const std::vector<RowPiece>& pieces) {
    StepUpload upload(kCuda);
    auto pass = runner.Prepare(pieces, upload);
    upload.Upload();
    EXPECT_EQ(pass.bucket, 4);
    return runner.Run(pass, upload);
  };
  torch::Tensor three = run({{tokens, 30, prompt}});
  const void* where = three.data_ptr();
  three = three.clone();
  torch::Tensor four = run({{tokens, 30, prompt}, {other, 2, nullptr}});  // the padding row now holds a real one
  EXPECT_EQ(four.data_ptr(), where) << "the static output moved";
  EXPECT_TRUE(torch::equal(four.narrow(0, 0, 3), three));
}

TEST(FastPathCudaTest, SteadyStepsNeverSynchronise) {
  VQD_REQUIRE_CUDA("the sync-free step");
  DeviceScope scope(kCuda);
  auto pipe = Load(Options(kCuda, torch::kFloat16, true, 8));
  ASSERT_TRUE(pipe);
  std::vector<SampleGroup> groups(2);
  std::vector<torch::Generator> gens = {diffusion::MakeGenerator(kCuda, 1), diffusion::MakeGenerator(kCuda, 2)};
  std::vector<SampleGroup*> batch;
  for (int i = 0; i < 2; ++i) {
    groups[i].prompt = *pipe->EncodePrompt(i == 0 ? "a red car" : "a dog");
    groups[i].tokens = pipe->MaskedTokens(1 + i);
    groups[i].timestep = 20;
    groups[i].generator = &gens[i];
    batch.push_back(&groups[i]);
  }
  auto step = [&] {
    for (auto* g : batch) g->timestep = std::max<int64_t>(1, g->timestep - 1);
    ASSERT_TRUE(pipe->DenoiseStep(batch).ok());
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: allocator growth, pinned blocks
  c10::cuda::getCurrentCUDAStream().synchronize();
  {
    // PyTorch's own detector: a synchronising call throws.
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
    for (int i = 0; i < 3; ++i) step();
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  }
  // The spin canary catches what the detector misses (pageable copies, allocator growth, our own
  // waits): with a long kernel ahead of it in the stream, a step must return while it still spins.
  c10::cuda::getCurrentCUDAStream().synchronize();
  at::cuda::sleep(int64_t{2} * 1000 * 1000 * 1000);  // about a second of spinning
  at::cuda::CUDAEvent after_sleep;
  after_sleep.record(c10::cuda::getCurrentCUDAStream());
  step();
  EXPECT_FALSE(after_sleep.query()) << "DenoiseStep waited for the device";
  GridDownload download = GridDownload::Start({groups[0].tokens, groups[1].tokens}, pipe->info().codebook_size);
  EXPECT_FALSE(download.Ready()) << "the grid download finished before the spinning kernel";
  const auto& r = download.Wait();
  EXPECT_EQ(r.grids.size(0), 3);
  EXPECT_TRUE(r.grids.is_pinned());
  EXPECT_TRUE(torch::equal(r.grids, torch::cat({groups[0].tokens, groups[1].tokens}, 0).cpu()));
}
#endif  // VQD_WITH_CUDA

}  // namespace
}  // namespace vqd::pipeline
