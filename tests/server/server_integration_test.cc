// The real service (engine, gRPC server, metrics endpoint) on a free loopback port with the
// project's tiny random model, exercised over gRPC like a client would.
#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "common/test_model.h"
#include "io/png.h"
#include "pipeline/generate.h"
#include "server/server_app.h"
#include "server_test_util.h"
#include "test_server_config.h"

namespace vqd::server {
namespace {

namespace v1 = vqdiffusion::v1;
using testing::Generate;
using testing::MakeStub;
using testing::MetricValue;
using testing::ScrapeMetrics;
using testing::StreamResult;

ServerConfig TestConfig() {
  ServerConfig c = LoopbackTestConfig();
  c.max_batch_rows = 64;
  c.max_queue = 64;
  c.limits.max_images = 8;
  return c;
}

std::unique_ptr<ServerApp> StartServer(const ServerConfig& config, engine::StepFaultHook hook = {}) {
  auto app = ServerApp::Start(config, std::move(hook));
  EXPECT_TRUE(app.ok()) << app.status();
  return app.ok() ? std::move(*app) : nullptr;
}

// A step hook that only slows steps down, so that requests overlap on a fast tiny model.
engine::StepFaultHook SlowSteps(int milliseconds) {
  return [milliseconds](const std::vector<const engine::GenerationRequest*>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
    return absl::OkStatus();
  };
}

v1::GenerateRequest MakeRequest(const std::string& prompt, uint32_t steps, uint32_t images, float guidance,
                                float truncation, uint64_t seed) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.set_steps(steps);
  r.set_num_images(images);
  r.set_guidance_scale(guidance);
  r.set_truncation_rate(truncation);
  r.set_seed(seed);
  return r;
}

TEST(ServerIntegrationTest, StreamsEventsInOrderAndDecodablePngs) {
  auto app = StartServer(TestConfig());
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  v1::GenerateRequest request = MakeRequest("a red car", 10, 2, 5.0f, 1.0f, 42);
  request.set_progress_interval(3);
  request.set_request_id("order-test");
  StreamResult r = Generate(*stub, request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  // queued, started, progress 3 6 9 10, image 0, image 1, done.
  ASSERT_EQ(r.events.size(), 9u);
  EXPECT_TRUE(r.events[0].has_queued());
  EXPECT_EQ(r.events[0].queued().request_id(), "order-test");
  EXPECT_TRUE(r.events[1].has_started());
  EXPECT_EQ(r.events[1].started().seed(), 42u);
  const std::vector<uint32_t> expected_steps = {3, 6, 9, 10};
  const auto progress = r.progress();
  ASSERT_EQ(progress.size(), expected_steps.size());
  const pipeline::PipelineInfo& info = app->engine().info();
  for (size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i]->step(), expected_steps[i]);
    EXPECT_EQ(progress[i]->total_steps(), 10u);
    EXPECT_EQ(progress[i]->timestep(), 10 - expected_steps[i]);
    ASSERT_EQ(progress[i]->grids_size(), 2);
    EXPECT_EQ(progress[i]->grids(0).tokens_size(), info.num_latent_pixels);
    EXPECT_EQ(progress[i]->grids(0).height(), static_cast<uint32_t>(info.grid_height));
  }
  EXPECT_GT(progress[0]->masked_fraction(), 0.0f);
  EXPECT_EQ(progress.back()->masked_fraction(), 0.0f);  // nothing masked after t = 0
  const auto images = r.images();
  ASSERT_EQ(images.size(), 2u);
  for (uint32_t i = 0; i < 2; ++i) {
    EXPECT_EQ(images[i]->index(), i);
    EXPECT_EQ(images[i]->seed(), 42u);
    auto decoded = io::DecodePng(images[i]->png());
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->width, info.image_width);
    EXPECT_EQ(decoded->height, info.image_height);
    EXPECT_EQ(decoded->channels, 3);
    // The image's grid is the last progress event's grid.
    EXPECT_TRUE(std::equal(images[i]->grid().tokens().begin(), images[i]->grid().tokens().end(),
                           progress.back()->grids(static_cast<int>(i)).tokens().begin()));
  }
  ASSERT_TRUE(r.has_done());
  const v1::Done& done = r.events.back().done();
  EXPECT_EQ(done.request_id(), "order-test");
  EXPECT_EQ(done.steps(), 10u);
  EXPECT_GT(done.total_seconds(), 0.0);
  EXPECT_GE(done.total_seconds(), done.queue_seconds() + done.denoise_seconds());
}

TEST(ServerIntegrationTest, SixteenConcurrentMixedRequestsAreBatchedAndDeterministic) {
  auto app = StartServer(TestConfig(), SlowSteps(3));
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 16; ++i) {
    requests.push_back(MakeRequest("request number " + std::to_string(i), 10 + 5 * (i % 4), 1 + i % 2,
                                   i % 3 == 0 ? 1.0f : 2.0f + static_cast<float>(i % 4),
                                   i % 2 == 0 ? 1.0f : 0.7f + 0.05f * static_cast<float>(i % 5), 1000 + i));
    if (i % 5 == 4) {  // strided ones batch with the others too
      requests.back().clear_steps();
      requests.back().set_time_stride(4 + i % 3);
    }
    if (i % 5 == 2) {  // and fixed-count ones
      requests.back().set_prior_rule(i == 7 ? v1::PRIOR_RULE_UNIFORM : v1::PRIOR_RULE_PURITY);
      if (i != 7) requests.back().set_prior_weight(1.0f);
    }
  }
  std::vector<StreamResult> results = testing::RunConcurrently(*stub, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].images().size(), requests[i].num_images()) << i;
    EXPECT_TRUE(results[i].has_done()) << i;
  }
  // The engine really batched: some steps ran more than one request's rows.
  const std::string metrics = ScrapeMetrics(app->metrics_port());
  const double steps = MetricValue(metrics, "vqd_step_batch_rows_count{device=\"cpu\"}");
  const double single_row_steps = MetricValue(metrics, "vqd_step_batch_rows_bucket{device=\"cpu\",le=\"1\"}");
  const double small_steps = MetricValue(metrics, "vqd_step_batch_rows_bucket{device=\"cpu\",le=\"4\"}");
  EXPECT_GT(steps, 0);
  EXPECT_LT(small_steps, steps) << "no step ran more than 4 rows: requests were not batched together";
  EXPECT_LE(single_row_steps, small_steps);
  EXPECT_EQ(MetricValue(metrics, "vqd_requests_total{outcome=\"ok\"}"), 16);

  // Each request alone gives the same token grids as it did among the others.
  for (size_t i : {0u, 2u, 4u, 5u, 7u, 10u, 14u, 15u}) {
    StreamResult alone = Generate(*stub, requests[i]);
    ASSERT_TRUE(alone.status.ok());
    EXPECT_EQ(alone.final_grids(), results[i].final_grids()) << "request " << i << " depends on its batch";
  }
}

// The official strided sampler: progress reports the timesteps it visits, and the grids are the
// pipeline's own strided run with the same seed.
TEST(ServerIntegrationTest, StridedRequestVisitsTheOfficialTimesteps) {
  auto app = StartServer(TestConfig());
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  const pipeline::PipelineInfo& info = app->engine().info();
  ASSERT_EQ(info.num_train_timesteps, 100);
  v1::GenerateRequest request = MakeRequest("a red car", 0, 2, 5.0f, 0.9f, 77);
  request.clear_steps();
  request.set_time_stride(10);
  request.set_progress_interval(1);
  StreamResult r = Generate(*stub, request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  const std::vector<uint32_t> visited = {99, 89, 79, 69, 59, 49, 39, 29, 19, 9, 0};
  // Progress events waiting behind a slow reader are coalesced (newest wins), so some may be
  // missing; each one that arrives names its step's visited timestep, and the last one arrives.
  const auto progress = r.progress();
  ASSERT_FALSE(progress.empty());
  uint32_t last_step = 0;
  for (const v1::Progress* p : progress) {
    ASSERT_GE(p->step(), 1u);
    ASSERT_LE(p->step(), visited.size());
    EXPECT_GT(p->step(), last_step);
    last_step = p->step();
    EXPECT_EQ(p->total_steps(), visited.size());
    EXPECT_EQ(p->timestep(), visited[p->step() - 1]) << "step " << p->step();
  }
  EXPECT_EQ(progress.back()->step(), visited.size());
  EXPECT_EQ(progress.back()->masked_fraction(), 0.0f);
  EXPECT_EQ(r.events.back().done().steps(), visited.size());

  auto pipe = pipeline::VqDiffusionPipeline::Load(vqd::testing::TinyRandomModelDir(), {});
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  pipeline::GenerateParams params;
  params.prompt = "a red car";
  params.num_images = 2;
  params.guidance_scale = 5.0f;
  params.truncation_rate = 0.9f;
  params.seed = 77;
  params.time_stride = 10;
  params.steps = static_cast<int64_t>(visited.size());
  auto expected = pipeline::Generate(**pipe, params);
  ASSERT_TRUE(expected.ok()) << expected.status();
  const std::vector<std::vector<uint32_t>> grids = r.final_grids();
  ASSERT_EQ(grids.size(), 2u);
  for (int64_t i = 0; i < 2; ++i) {
    torch::Tensor row = expected->tokens[i].contiguous();
    EXPECT_EQ(std::vector<int64_t>(grids[static_cast<size_t>(i)].begin(), grids[static_cast<size_t>(i)].end()),
              std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
  }
  // Another stride's grids differ (the stride is really used).
  params.time_stride = 11;
  params.steps = diffusion::StridedStepCount(100, 11);
  auto other = pipeline::Generate(**pipe, params);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(torch::equal(other->tokens, expected->tokens));
}

// Inpainting over gRPC: the tokens outside the mask are the image's encoding; a request with a
// mask that is not black and white fails alone, naming the field, while the others are served.
TEST(ServerIntegrationTest, InpaintingKeepsTheImageOutsideTheMaskAndBadMasksFailAlone) {
  auto app = StartServer(TestConfig(), SlowSteps(2));
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  const pipeline::PipelineInfo& info = app->engine().info();
  const int w = static_cast<int>(info.image_width), h = static_cast<int>(info.image_height);
  std::vector<uint8_t> image, mask, gray;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      image.insert(image.end(), {static_cast<uint8_t>(7 * x), static_cast<uint8_t>(5 * y), 200});
      mask.insert(mask.end(), 3, y < h / 2 ? 255 : 0);  // regenerate the top half
      gray.insert(gray.end(), 3, 100);
    }
  }
  v1::GenerateRequest inpaint = MakeRequest("a red car", 0, 2, 5.0f, 1.0f, 5);
  inpaint.clear_steps();
  inpaint.set_init_image(*io::EncodePng(image.data(), w, h, 3));
  inpaint.set_mask(*io::EncodePng(mask.data(), w, h, 3));
  inpaint.set_strength(0.4f);
  v1::GenerateRequest bad = inpaint;
  bad.set_mask(*io::EncodePng(gray.data(), w, h, 3));
  const std::vector<v1::GenerateRequest> requests = {inpaint, bad, MakeRequest("the sea", 10, 1, 3.0f, 1.0f, 6)};
  std::vector<StreamResult> results = testing::RunConcurrently(*stub, requests);
  ASSERT_TRUE(results[0].status.ok()) << results[0].status.error_message();
  EXPECT_EQ(results[0].events.back().done().steps(), 40u);
  EXPECT_EQ(results[1].status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(results[1].status.error_message().rfind("mask:", 0), 0u) << results[1].status.error_message();
  ASSERT_TRUE(results[2].status.ok()) << results[2].status.error_message();

  auto pipe = pipeline::VqDiffusionPipeline::Load(vqd::testing::TinyRandomModelDir(), {});
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  const torch::Tensor pixels = *pipeline::EditImageFromPng(inpaint.init_image(), info, "init_image");
  const torch::Tensor encoded = (*pipe)->EncodeImage(pixels.unsqueeze(0))->contiguous();
  const std::vector<std::vector<uint32_t>> grids = results[0].final_grids();
  ASSERT_EQ(grids.size(), 2u);
  size_t differ_inside = 0;
  for (const auto& grid : grids) {
    for (int64_t i = 0; i < info.num_latent_pixels; ++i) {
      const bool top = i / info.grid_width < info.grid_height / 2;
      if (!top) {
        EXPECT_EQ(grid[static_cast<size_t>(i)], encoded[0][i].item<int64_t>()) << "kept token " << i;
      } else {
        differ_inside += grid[static_cast<size_t>(i)] != static_cast<uint32_t>(encoded[0][i].item<int64_t>());
      }
    }
  }
  EXPECT_GT(differ_inside, 0u) << "nothing was regenerated inside the mask";
}

// Previews every 3 of 10 steps: after steps 3, 6 and 9 (none after the last), one decodable PNG
// per image of the model's image size (the tiny model's 32 pixels are already small).
TEST(ServerIntegrationTest, PreviewsArriveEveryKStepsBeforeTheImages) {
  auto app = StartServer(TestConfig());
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  const pipeline::PipelineInfo& info = app->engine().info();
  v1::GenerateRequest request = MakeRequest("a red car", 10, 2, 5.0f, 1.0f, 12);
  request.set_preview_interval(3);
  StreamResult r = Generate(*stub, request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  std::vector<uint32_t> steps;
  bool image_seen = false;
  for (const v1::GenerateEvent& e : r.events) {
    if (e.has_image()) image_seen = true;
    if (!e.has_preview()) continue;
    EXPECT_FALSE(image_seen) << "a preview after the images";
    steps.push_back(e.preview().step());
    EXPECT_EQ(e.preview().total_steps(), 10u);
    EXPECT_EQ(e.preview().timestep(), 10 - e.preview().step());
    ASSERT_EQ(e.preview().pngs_size(), 2);
    for (const std::string& png : e.preview().pngs()) {
      auto decoded = io::DecodePng(png);
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(decoded->width, info.image_width);
      EXPECT_EQ(static_cast<uint32_t>(decoded->width), e.preview().width());
    }
  }
  EXPECT_EQ(steps, (std::vector<uint32_t>{3, 6, 9}));
  v1::GenerateRequest too_often = request;
  too_often.set_preview_interval(100000);
  EXPECT_EQ(Generate(*stub, too_often).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ServerIntegrationTest, CancellationFreesTheSlotForTheNextRequest) {
  ServerConfig config = TestConfig();
  config.max_batch_rows = 2;  // one guided image fills the batch
  auto app = StartServer(config, SlowSteps(20));
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());

  grpc::ClientContext long_context;
  v1::GenerateRequest long_request = MakeRequest("a long one", 100, 1, 5.0f, 1.0f, 1);  // ~2 s of steps
  auto long_reader = stub->Generate(&long_context, long_request);
  v1::GenerateEvent event;
  ASSERT_TRUE(long_reader->Read(&event) && event.has_queued());
  ASSERT_TRUE(long_reader->Read(&event) && event.has_started());

  std::atomic<bool> second_started{false};
  StreamResult second;
  std::thread waiter([&] {
    grpc::ClientContext context;
    auto reader = stub->Generate(&context, MakeRequest("waiting", 5, 1, 5.0f, 1.0f, 2));
    v1::GenerateEvent e;
    while (reader->Read(&e)) {
      if (e.has_started()) second_started.store(true);
      second.events.push_back(e);
    }
    second.status = reader->Finish();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(second_started.load()) << "the second request should wait while the batch is full";
  const auto cancel_time = std::chrono::steady_clock::now();
  long_context.TryCancel();
  while (long_reader->Read(&event)) {
  }
  EXPECT_EQ(long_reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  waiter.join();
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_TRUE(second_started.load());
  // It ran as soon as the cancelled request left the batch (a step boundary), not after its 100 steps.
  EXPECT_LT(std::chrono::steady_clock::now() - cancel_time, std::chrono::milliseconds(1500));
  const std::string metrics = ScrapeMetrics(app->metrics_port());
  EXPECT_EQ(MetricValue(metrics, "vqd_requests_total{outcome=\"cancelled\"}"), 1);
}

TEST(ServerIntegrationTest, FullQueueIsResourceExhausted) {
  ServerConfig config = TestConfig();
  config.max_batch_rows = 2;
  config.max_queue = 1;
  auto app = StartServer(config, SlowSteps(20));
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  // One running, one waiting: the third finds the queue full.
  grpc::ClientContext running_context, waiting_context;
  auto running = stub->Generate(&running_context, MakeRequest("running", 100, 1, 5.0f, 1.0f, 1));
  v1::GenerateEvent event;
  ASSERT_TRUE(running->Read(&event) && event.has_queued());
  ASSERT_TRUE(running->Read(&event) && event.has_started());
  auto waiting = stub->Generate(&waiting_context, MakeRequest("waiting", 5, 1, 5.0f, 1.0f, 2));
  ASSERT_TRUE(waiting->Read(&event) && event.has_queued());
  StreamResult third = Generate(*stub, MakeRequest("third", 5, 1, 5.0f, 1.0f, 3));
  EXPECT_EQ(third.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(third.status.error_message().find("queue is full"), std::string::npos) << third.status.error_message();
  EXPECT_TRUE(third.events.empty());
  running_context.TryCancel();
  waiting_context.TryCancel();
  while (running->Read(&event)) {
  }
  while (waiting->Read(&event)) {
  }
  running->Finish();
  waiting->Finish();
  EXPECT_EQ(MetricValue(ScrapeMetrics(app->metrics_port()), "vqd_requests_total{outcome=\"rejected\"}"), 1);
}

TEST(ServerIntegrationTest, InvalidArgumentsNameTheFieldAndTheRange) {
  ServerConfig config = TestConfig();
  config.limits.max_prompt_bytes = 100;
  auto app = StartServer(config);
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  struct Case {
    std::function<void(v1::GenerateRequest&)> mutate;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {[](auto& r) { r.set_steps(0); }, "steps: must be in [1, 100]"},
      {[](auto& r) { r.set_steps(101); }, "steps: must be in [1, 100]"},
      {[](auto& r) { r.set_guidance_scale(std::nanf("")); }, "guidance_scale: must be finite and >= 0"},
      {[](auto& r) { r.set_guidance_scale(INFINITY); }, "guidance_scale: must be finite and >= 0"},
      {[](auto& r) { r.set_guidance_scale(-0.5f); }, "guidance_scale: must be finite and >= 0"},
      {[](auto& r) { r.set_truncation_rate(0.0f); }, "truncation_rate: must be in (0, 1]"},
      {[](auto& r) { r.set_truncation_rate(1.01f); }, "truncation_rate: must be in (0, 1]"},
      {[](auto& r) { r.set_truncation_rate(std::nanf("")); }, "truncation_rate: must be in (0, 1]"},
      {[](auto& r) { r.set_num_images(0); }, "num_images: must be in [1, 8]"},
      {[](auto& r) { r.set_num_images(9); }, "num_images: must be in [1, 8]"},
      {[](auto& r) { r.set_prompt(std::string(101, 'a')); }, "prompt: is 101 bytes; at most 100"},
      {[](auto& r) { r.set_request_id("has space"); }, "request_id: must be printable ASCII"},
      {[](auto& r) { r.set_progress_interval(5000); }, "progress_interval: must be in [0, 1000]"},
  };
  for (const Case& c : cases) {
    v1::GenerateRequest request = MakeRequest("a cat", 5, 1, 5.0f, 1.0f, 1);
    c.mutate(request);
    StreamResult r = Generate(*stub, request);
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.expected;
    EXPECT_NE(r.status.error_message().find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\" in \"" << r.status.error_message() << "\"";
  }
  EXPECT_EQ(MetricValue(ScrapeMetrics(app->metrics_port()), "vqd_requests_total{outcome=\"invalid\"}"),
            static_cast<double>(cases.size()));
  // The server kept serving.
  EXPECT_TRUE(Generate(*stub, MakeRequest("still fine", 3, 1, 5.0f, 1.0f, 1)).status.ok());
}

TEST(ServerIntegrationTest, TooManyRowsForTheBatchIsInvalid) {
  ServerConfig config = TestConfig();
  config.max_batch_rows = 4;
  auto app = StartServer(config);
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  StreamResult r = Generate(*stub, MakeRequest("x", 3, 3, 5.0f, 1.0f, 1));  // 6 rows with guidance
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(r.status.error_message().find("num_images: 3 images with guidance need 6 transformer rows"),
            std::string::npos)
      << r.status.error_message();
  EXPECT_TRUE(Generate(*stub, MakeRequest("x", 3, 3, 1.0f, 1.0f, 1)).status.ok());  // 3 rows without
}

TEST(ServerIntegrationTest, PassedDeadlineEndsTheRequest) {
  auto app = StartServer(TestConfig(), SlowSteps(20));
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  StreamResult r = Generate(*stub, MakeRequest("slow", 100, 1, 5.0f, 1.0f, 1), /*deadline_seconds=*/0.3);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The slot is free again and the outcome is counted once the engine noticed.
  ASSERT_TRUE(Generate(*stub, MakeRequest("next", 3, 1, 5.0f, 1.0f, 2)).status.ok());
  EXPECT_EQ(MetricValue(ScrapeMetrics(app->metrics_port()), "vqd_requests_total{outcome=\"deadline\"}"), 1);
}

TEST(ServerIntegrationTest, PrioritiesOrderTheQueue) {
  ServerConfig config = TestConfig();
  config.max_batch_rows = 2;
  auto app = StartServer(config, SlowSteps(10));
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  grpc::ClientContext blocker_context;
  auto blocker = stub->Generate(&blocker_context, MakeRequest("blocker", 30, 1, 5.0f, 1.0f, 1));
  v1::GenerateEvent event;
  ASSERT_TRUE(blocker->Read(&event) && event.has_queued());
  ASSERT_TRUE(blocker->Read(&event) && event.has_started());
  // Queue a low and then a high priority request; the high one must start first.
  std::mutex mu;
  std::vector<std::string> start_order;
  auto run = [&](const std::string& name, int priority) {
    v1::GenerateRequest r = MakeRequest(name, 3, 1, 5.0f, 1.0f, 2);
    r.set_priority(priority);
    grpc::ClientContext context;
    auto reader = stub->Generate(&context, r);
    v1::GenerateEvent e;
    while (reader->Read(&e)) {
      if (e.has_started()) {
        std::lock_guard<std::mutex> lock(mu);
        start_order.push_back(name);
      }
    }
    EXPECT_TRUE(reader->Finish().ok());
  };
  std::thread low([&] { run("low", 0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread high([&] { run("high", 10); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  while (blocker->Read(&event)) {
  }
  EXPECT_TRUE(blocker->Finish().ok());
  low.join();
  high.join();
  EXPECT_EQ(start_order, (std::vector<std::string>{"high", "low"}));
}

TEST(ServerIntegrationTest, GetModelInfoDescribesModelAndLimits) {
  auto app = StartServer(TestConfig());
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.grid_height(), 8u);
  EXPECT_EQ(info.grid_width(), 8u);
  EXPECT_EQ(info.image_height(), 32u);
  EXPECT_EQ(info.codebook_size(), 16u);
  EXPECT_EQ(info.mask_token(), 16u);
  EXPECT_EQ(info.num_train_timesteps(), 100u);
  ASSERT_EQ(info.devices_size(), 1);
  EXPECT_EQ(info.devices(0), "cpu");
  EXPECT_EQ(info.dtype(), "fp32");
  EXPECT_TRUE(info.learned_null_embeddings());
  EXPECT_EQ(info.limits().max_images(), 8u);
  EXPECT_EQ(info.limits().max_batch_rows(), 64u);
  EXPECT_EQ(info.limits().max_steps(), 100u);
  EXPECT_EQ(info.max_prompt_tokens(), 77u);
}

TEST(ServerIntegrationTest, TwoWorkersShareTheQueue) {
  ServerConfig config = TestConfig();
  config.devices = {torch::kCPU, torch::kCPU};
  config.max_batch_rows = 2;
  auto app = StartServer(config, SlowSteps(10));
  ASSERT_TRUE(app);
  ASSERT_EQ(app->engine().num_workers(), 2u);
  auto stub = MakeStub(app->grpc_port());
  std::vector<StreamResult> results =
      testing::RunConcurrently(*stub, std::vector<v1::GenerateRequest>(4, MakeRequest("w", 20, 1, 5.0f, 1.0f, 7)));
  for (const auto& r : results) {
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.final_grids(), results[0].final_grids());  // same request, same seed: same images on either worker
  }
  // Both workers ran steps: the four requests overlapped on two single-request batches.
  const std::string metrics = ScrapeMetrics(app->metrics_port());
  EXPECT_GT(MetricValue(metrics, "vqd_steps_total{device=\"cpu\"}"), 0);
  EXPECT_GT(MetricValue(metrics, "vqd_steps_total{device=\"cpu#1\"}"), 0);
}

TEST(ServerIntegrationTest, NewWorkGoesToTheLeastLoadedWorker) {
  // Each worker could take all eight requests at once (8 rows); balanced, each takes four.
  ServerConfig config = TestConfig();
  config.devices = {torch::kCPU, torch::kCPU};
  config.max_batch_rows = 8;
  auto app = StartServer(config, SlowSteps(5));
  ASSERT_TRUE(app);
  auto stub = MakeStub(app->grpc_port());
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 8; ++i) requests.push_back(MakeRequest("balanced " + std::to_string(i), 40, 1, 1.0f, 1.0f, i));
  std::map<std::string, int> started_on;
  for (const StreamResult& r : testing::RunConcurrently(*stub, requests)) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    for (const auto& e : r.events) {
      if (e.has_started()) ++started_on[e.started().device()];
    }
  }
  EXPECT_GE(started_on["cpu"], 3) << "cpu: " << started_on["cpu"] << ", cpu#1: " << started_on["cpu#1"];
  EXPECT_GE(started_on["cpu#1"], 3) << "cpu: " << started_on["cpu"] << ", cpu#1: " << started_on["cpu#1"];
}

}  // namespace
}  // namespace vqd::server
