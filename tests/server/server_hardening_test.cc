// The service under faults and hostile calls: an error in one request's step, device memory
// running out, missing or wrong bearer tokens, TLS with client certificates, oversized messages.
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <variant>

#include <gtest/gtest.h>

#include "base/process_memory.h"
#include "common/test_model.h"
#include "engine/engine.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/server_app.h"
#include "server_test_util.h"
#include "test_server_config.h"

namespace vqd::server {
namespace {

namespace fs = std::filesystem;
namespace v1 = vqdiffusion::v1;
using testing::Generate;
using testing::MakeStub;
using testing::MetricValue;
using testing::ScrapeMetrics;
using testing::RunConcurrently;
using testing::StreamResult;

ServerConfig TestConfig() {
  ServerConfig c = LoopbackTestConfig();
  c.max_batch_rows = 16;
  c.limits.max_images = 4;
  return c;
}

v1::GenerateRequest Request(const std::string& id, uint64_t seed, uint32_t steps = 20) {
  v1::GenerateRequest r;
  r.set_prompt("prompt of " + id);
  r.set_request_id(id);
  r.set_steps(steps);
  r.set_num_images(1);
  r.set_seed(seed);
  return r;
}

bool Contains(const std::vector<const engine::GenerationRequest*>& batch, const std::string& id) {
  for (const auto* r : batch) {
    if (r->id() == id) return true;
  }
  return false;
}

int64_t Rows(const std::vector<const engine::GenerationRequest*>& batch) {
  int64_t rows = 0;
  for (const auto* r : batch) rows += r->rows();
  return rows;
}

std::vector<std::string> Pngs(const StreamResult& result) {
  std::vector<std::string> pngs;
  for (const auto* image : result.images()) pngs.push_back(image->png());
  return pngs;
}

// A device that "runs out of memory" on any step of more than `max_rows` rows while `failing`.
engine::StepFaultHook OutOfMemoryAbove(int64_t max_rows, std::atomic<int>* ooms,
                                       std::atomic<bool>* failing = nullptr) {
  return [=](const std::vector<const engine::GenerationRequest*>& batch) -> absl::Status {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    if ((failing == nullptr || failing->load()) && Rows(batch) > max_rows) {
      ++*ooms;
      return absl::ResourceExhaustedError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)");
    }
    return absl::OkStatus();
  };
}

TEST(ServerHardeningTest, AFaultInOneRequestsStepFailsOnlyThatRequest) {
  std::atomic<int> injected{0};
  auto hook = [&](const std::vector<const engine::GenerationRequest*>& batch) -> absl::Status {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    if (Contains(batch, "poison")) {
      ++injected;
      return absl::InternalError("injected fault in the step of request poison");
    }
    return absl::OkStatus();
  };
  auto app = ServerApp::Start(TestConfig(), hook);
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 5; ++i) requests.push_back(Request("healthy-" + std::to_string(i), 10 + i));
  requests.insert(requests.begin() + 2, Request("poison", 99));
  std::vector<StreamResult> results = RunConcurrently(*stub, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].request_id() == "poison") {
      EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::INTERNAL);
      EXPECT_NE(results[i].status.error_message().find("injected fault"), std::string::npos);
    } else {
      ASSERT_TRUE(results[i].status.ok()) << requests[i].request_id() << ": " << results[i].status.error_message();
      // Retrying in halves did not change the healthy requests' images.
      StreamResult alone = Generate(*stub, requests[i]);
      ASSERT_TRUE(alone.status.ok());
      EXPECT_EQ(alone.final_grids(), results[i].final_grids()) << requests[i].request_id();
      // Each request is decoded on its own, so its PNGs are byte-identical too.
      EXPECT_EQ(Pngs(alone), Pngs(results[i])) << requests[i].request_id();
    }
  }
  EXPECT_GT(injected.load(), 0);
  const std::string metrics = ScrapeMetrics((*app)->metrics_port());
  EXPECT_EQ(MetricValue(metrics, "vqd_requests_total{outcome=\"error\"}"), 1);
  EXPECT_TRUE(Generate(*stub, Request("after", 1, 3)).status.ok());  // still serving
}

TEST(ServerHardeningTest, OutOfMemoryShrinksTheBatchAndRetriesInsteadOfFailing) {
  // A device that runs out of memory above 4 rows (2 guided images).
  std::atomic<int> ooms{0};
  auto app = ServerApp::Start(TestConfig(), OutOfMemoryAbove(4, &ooms));
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(Request("r" + std::to_string(i), 100 + i, 30));
  std::vector<StreamResult> results = RunConcurrently(*stub, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    StreamResult alone = Generate(*stub, requests[i]);
    ASSERT_TRUE(alone.status.ok());
    EXPECT_EQ(alone.final_grids(), results[i].final_grids()) << i;
    EXPECT_EQ(Pngs(alone), Pngs(results[i])) << i;
  }
  EXPECT_GT(ooms.load(), 0) << "the requests never shared a batch of more than 4 rows";
  // The running batch itself shrank to the lowered budget: a few failed attempts when the budget
  // was found, not a failed attempt at every one of the 30 steps.
  EXPECT_LE(ooms.load(), 8);
  EXPECT_LE((*app)->engine().worker(0).row_budget(), 4);
  EXPECT_EQ(MetricValue(ScrapeMetrics((*app)->metrics_port()), "vqd_requests_total{outcome=\"error\"}"), 0);
}

TEST(ServerHardeningTest, ARequestAboveTheLoweredBudgetRunsAloneInsteadOfWedgingTheQueue) {
  std::atomic<int> ooms{0};
  ServerConfig config = TestConfig();
  config.budget_recovery_interval = absl::Hours(1);  // the budget stays lowered for the whole test
  auto app = ServerApp::Start(config, OutOfMemoryAbove(4, &ooms));
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  // Three guided single images (2 rows each) meet in a step of 6 rows: out of memory, budget 3.
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 3; ++i) requests.push_back(Request("small-" + std::to_string(i), 10 + i, 30));
  for (const StreamResult& r : RunConcurrently(*stub, requests)) ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_GT(ooms.load(), 0) << "the requests never shared a batch of more than 4 rows";
  ASSERT_LT((*app)->engine().worker(0).row_budget(), 4);
  // Two guided images need 4 rows, more than the budget; alone they fit the device. Nothing else
  // is running, so the request runs alone (before the fix it waited forever, and so did everything
  // queued behind it).
  v1::GenerateRequest big = Request("big", 20, 10);
  big.set_num_images(2);
  StreamResult result = Generate(*stub, big, /*deadline_seconds=*/30);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.images().size(), 2u);
  EXPECT_TRUE(Generate(*stub, Request("after", 21, 3), 30).status.ok());
}

TEST(ServerHardeningTest, TheRowBudgetGrowsBackWithTimeEvenWhenIdle) {
  std::atomic<int> ooms{0};
  std::atomic<bool> failing{true};
  ServerConfig config = TestConfig();
  config.budget_recovery_interval = absl::Milliseconds(100);
  auto app = ServerApp::Start(config, OutOfMemoryAbove(2, &ooms, &failing));
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request("r" + std::to_string(i), 30 + i, 30));
  for (const StreamResult& r : RunConcurrently(*stub, requests)) ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_GT(ooms.load(), 0);
  failing = false;  // the memory pressure is gone; the server is idle from now on
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((*app)->engine().worker(0).row_budget() < config.max_batch_rows &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ((*app)->engine().worker(0).row_budget(), config.max_batch_rows);
}

TEST(ServerHardeningTest, ADecodingFaultFailsOnlyItsRequest) {
  engine::FaultHooks faults;
  faults.step = [](const std::vector<const engine::GenerationRequest*>&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    return absl::OkStatus();
  };
  faults.decode = [](const engine::GenerationRequest& request) {
    return request.id() == "poison" ? absl::InternalError("injected decoding fault") : absl::OkStatus();
  };
  auto app = ServerApp::Start(TestConfig(), faults);
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  // Same step counts, submitted together: they finish in the same step and are decoded together.
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Request("healthy-" + std::to_string(i), 40 + i, 10));
  requests.insert(requests.begin() + 1, Request("poison", 49, 10));
  std::vector<StreamResult> results = RunConcurrently(*stub, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].request_id() == "poison") {
      EXPECT_EQ(results[i].status.error_code(), grpc::StatusCode::INTERNAL);
      EXPECT_NE(results[i].status.error_message().find("injected decoding fault"), std::string::npos)
          << results[i].status.error_message();
    } else {
      ASSERT_TRUE(results[i].status.ok()) << requests[i].request_id() << ": " << results[i].status.error_message();
      EXPECT_EQ(results[i].images().size(), 1u);
    }
  }
  EXPECT_EQ(MetricValue(ScrapeMetrics((*app)->metrics_port()), "vqd_requests_total{outcome=\"error\"}"), 1);
}

// An event sink that holds the engine's thread on one kind of event until released: a prompt that
// takes long to encode (Started follows encoding), or images that take long to deliver.
template <typename Event>
class HoldingSink : public engine::EventSink {
 public:
  void Deliver(engine::RequestEvent event) override {
    if (std::holds_alternative<Event>(event)) {
      std::unique_lock<std::mutex> lock(mu_);
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
    }
    if (std::holds_alternative<engine::DoneEvent>(event)) done_ = true;
  }
  void Fail(const absl::Status& status, engine::Outcome) override { failure_ = status; }
  bool WaitUntilHeld(std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return held_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool done() const { return done_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool released_ = false;
  std::atomic<bool> done_{false};
  absl::Status failure_;
};

template <typename Event>
void ExpectDrainWaitsWhileHeld() {
  engine::EngineOptions options;
  options.max_batch_rows = 4;
  auto engine = engine::Engine::Create(vqd::testing::TinyRandomModelDir(), options, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status();
  engine::RequestParams params;
  params.request_id = "held";
  params.prompt = "a held request";
  params.steps = 3;
  auto sink = std::make_shared<HoldingSink<Event>>();
  auto request = std::make_shared<engine::GenerationRequest>(params, sink);
  ASSERT_TRUE((*engine)->Submit(request).ok());
  ASSERT_TRUE(sink->WaitUntilHeld(std::chrono::seconds(30)));
  (*engine)->StopIntake();
  // Taken from the queue and not denoising (or no longer): still accepted and unanswered.
  EXPECT_EQ((*engine)->queue_depth(), 0u);
  EXPECT_FALSE((*engine)->WaitUntilIdle(absl::Milliseconds(200)));
  EXPECT_EQ((*engine)->unfinished_requests(), 1);
  sink->Release();
  EXPECT_TRUE((*engine)->WaitUntilIdle(absl::Seconds(30)));
  EXPECT_TRUE(sink->done());
}

TEST(ServerHardeningTest, DrainWaitsForARequestWhosePromptIsBeingEncoded) {
  ExpectDrainWaitsWhileHeld<engine::StartedEvent>();
}

TEST(ServerHardeningTest, DrainWaitsForARequestWhoseImagesAreBeingDelivered) {
  ExpectDrainWaitsWhileHeld<engine::ImageEvent>();
}

TEST(ServerHardeningTest, OutOfMemoryForASingleRequestIsResourceExhausted) {
  auto hook = [](const std::vector<const engine::GenerationRequest*>& batch) -> absl::Status {
    if (Contains(batch, "huge")) return absl::ResourceExhaustedError("CUDA out of memory (injected)");
    return absl::OkStatus();
  };
  auto app = ServerApp::Start(TestConfig(), hook);
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  StreamResult r = Generate(*stub, Request("huge", 1, 3));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(r.status.error_message().find("out of device memory even running alone"), std::string::npos)
      << r.status.error_message();
  EXPECT_TRUE(Generate(*stub, Request("small", 2, 3)).status.ok());
}

TEST(ServerHardeningTest, ClientsThatStopReadingAreCancelledWhileOthersAreServed) {
  // The small preset's 64x64 PNGs of noise are ~12 KB each: sixteen of them overflow a client's
  // 64 KiB HTTP/2 receive window, so a client that never reads leaves the server's write stalled.
  ServerConfig config = TestConfig();
  config.model_dir = vqd::testing::SmallRandomModelDir();
  config.limits.max_images = 16;
  config.max_batch_rows = 64;
  config.streams.stalled_timeout = absl::Seconds(1);
  auto app = ServerApp::Start(config);
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  // Stalled clients get a connection of their own (so that they do not hold the ordinary
  // clients' connection window), without BDP probing, which would grow their window.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt("vqd.test.stalled_clients", 1);
  auto stalled_stub = v1::VqDiffusion::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string((*app)->grpc_port()), grpc::InsecureChannelCredentials(), args));

  // The largest requests (sixteen images), unguided and short so that a 2-core machine runs
  // them quickly.
  auto largest = [](const std::string& id, uint64_t seed) {
    v1::GenerateRequest r = Request(id, seed, 2);
    r.set_num_images(16);
    r.set_guidance_scale(1.0f);
    return r;
  };
  constexpr int kStalled = 4;
  // Warm up with the same batch as the stalled ones will make (libtorch's allocators and kernel
  // caches keep memory per batch shape), read normally; what is measured after is what the
  // stalled streams hold.
  std::vector<v1::GenerateRequest> warm_up;
  for (int i = 0; i < kStalled; ++i) warm_up.push_back(largest("warm-up-" + std::to_string(i), 1 + i));
  for (const StreamResult& r : RunConcurrently(*stub, warm_up)) ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  const int64_t rss_before = ProcessStatusBytes("VmRSS");
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::GenerateEvent>>> readers;
  for (int i = 0; i < kStalled; ++i) {
    v1::GenerateRequest r = largest("never-reads-" + std::to_string(i), 100 + i);
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    readers.push_back(stalled_stub->Generate(contexts.back().get(), r));  // and never Read
  }
  // Ordinary clients are served meanwhile.
  for (int i = 0; i < 4; ++i) {
    StreamResult r = Generate(*stub, Request("ordinary-" + std::to_string(i), 200 + i, 3), 120);
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  }
  // Every stalled call is cancelled and its request's resources freed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  double cancelled = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    cancelled = MetricValue(ScrapeMetrics((*app)->metrics_port()), "vqd_streams_cancelled_total{reason=\"stalled\"}");
    if (cancelled >= kStalled && (*app)->engine().unfinished_requests() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(cancelled, kStalled);
  EXPECT_EQ((*app)->engine().unfinished_requests(), 0);
  const int64_t rss_after = ProcessStatusBytes("VmRSS");
  std::printf("stalled streams: %d cancelled; RSS %.1f MiB before, %.1f MiB after\n", kStalled,
              static_cast<double>(rss_before) / (1 << 20), static_cast<double>(rss_after) / (1 << 20));
  // What four stalled streams hold is small next to libtorch's caches, which still grow with the
  // batch compositions the ordinary clients add (+1 MiB on the Debian build, +97 MiB on PyTorch
  // 2.11's); the bound catches memory held per stream or per request, not a few pages.
  EXPECT_LT(rss_after - rss_before, int64_t{256} << 20);
  // The stalled clients see their calls ended by the server.
  for (int i = 0; i < kStalled; ++i) {
    v1::GenerateEvent event;
    while (readers[i]->Read(&event)) {
    }
    EXPECT_FALSE(readers[i]->Finish().ok());
  }
  EXPECT_TRUE(Generate(*stub, Request("after", 3, 3)).status.ok());
}

TEST(ServerHardeningTest, AStreamThatWouldExceedItsByteBoundIsCancelled) {
  ServerConfig config = TestConfig();
  config.model_dir = vqd::testing::SmallRandomModelDir();
  config.limits.max_images = 16;
  config.max_batch_rows = 64;
  config.streams.max_pending_bytes = 64 << 10;  // less than sixteen images
  auto app = ServerApp::Start(config);
  ASSERT_TRUE(app.ok()) << app.status();
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  auto stub = v1::VqDiffusion::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string((*app)->grpc_port()), grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext context;
  v1::GenerateRequest r = Request("slow-reader", 7, 2);
  r.set_num_images(16);
  r.set_guidance_scale(1.0f);
  auto reader = stub->Generate(&context, r);
  // Not reading: the images pile up in the server beyond the bound.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  double cancelled = 0;
  while (std::chrono::steady_clock::now() < deadline && cancelled < 1) {
    cancelled =
        MetricValue(ScrapeMetrics((*app)->metrics_port()), "vqd_streams_cancelled_total{reason=\"buffer_full\"}");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(cancelled, 1);
  v1::GenerateEvent event;
  while (reader->Read(&event)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  EXPECT_EQ(MetricValue(ScrapeMetrics((*app)->metrics_port()), "vqd_streams_cancelled_total{reason=\"stalled\"}"), 0);
}

TEST(ServerHardeningTest, BearerTokenIsRequiredExceptForHealth) {
  ServerConfig config = TestConfig();
  config.auth_token = "s3cret-token";
  auto app = ServerApp::Start(config);
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  StreamResult none = Generate(*stub, Request("a", 1, 3));
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  StreamResult wrong = Generate(*stub, Request("b", 1, 3), 60, {{"authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  StreamResult right = Generate(*stub, Request("c", 1, 3), 60, {{"authorization", "Bearer s3cret-token"}});
  EXPECT_TRUE(right.status.ok()) << right.status.error_message();
  {
    grpc::ClientContext context;
    v1::ModelInfo info;
    EXPECT_EQ(stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    auto health = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string((*app)->grpc_port()), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok());
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  EXPECT_EQ(MetricValue(ScrapeMetrics((*app)->metrics_port()), "vqd_requests_total{outcome=\"rejected\"}"), 2);
}

TEST(ServerHardeningTest, OversizedRequestMessageIsRefused) {
  ServerConfig config = TestConfig();
  config.max_message_bytes = 1024;
  auto app = ServerApp::Start(config);
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  v1::GenerateRequest r = Request("big", 1, 3);
  r.set_prompt(std::string(4000, 'a'));
  StreamResult result = Generate(*stub, r);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << result.status.error_message();
  EXPECT_TRUE(Generate(*stub, Request("small", 1, 3)).status.ok());
}

// Certificates made with openssl for one test run.
class TlsFiles {
 public:
  TlsFiles() {
    dir_ = fs::temp_directory_path() / ("vqd-tls-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string script =
        "set -e; cd '" + d + "'; "
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=vqd-test-ca -keyout ca.key -out ca.pem 2>/dev/null; "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext; "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext "
        "-out server.pem 2>/dev/null; "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=vqd-test-client -keyout client.key -out client.csr 2>/dev/null; "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem 2>/dev/null";
    ok_ = std::system(("bash -c \"" + script + "\"").c_str()) == 0;
  }
  ~TlsFiles() { fs::remove_all(dir_); }
  bool ok() const { return ok_; }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string Read(const std::string& name) const {
    std::ifstream in(dir_ / name);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  fs::path dir_;
  bool ok_ = false;
};

TEST(ServerHardeningTest, MutualTlsAcceptsOnlyClientsWithACertificate) {
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "openssl is not installed";
  TlsFiles tls;
  ASSERT_TRUE(tls.ok()) << "could not make test certificates with openssl";
  ServerConfig config = TestConfig();
  config.tls_cert_file = tls.Path("server.pem");
  config.tls_key_file = tls.Path("server.key");
  config.tls_client_ca_file = tls.Path("ca.pem");
  auto app = ServerApp::Start(config);
  ASSERT_TRUE(app.ok()) << app.status();
  const std::string target = "localhost:" + std::to_string((*app)->grpc_port());
  auto call = [&](std::shared_ptr<grpc::ChannelCredentials> credentials) {
    auto stub = v1::VqDiffusion::NewStub(grpc::CreateChannel(target, credentials));
    return Generate(*stub, Request("tls", 1, 3), 10);
  };
  grpc::SslCredentialsOptions with_cert;
  with_cert.pem_root_certs = tls.Read("ca.pem");
  with_cert.pem_private_key = tls.Read("client.key");
  with_cert.pem_cert_chain = tls.Read("client.pem");
  StreamResult ok = call(grpc::SslCredentials(with_cert));
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_EQ(ok.images().size(), 1u);
  grpc::SslCredentialsOptions without_cert;
  without_cert.pem_root_certs = tls.Read("ca.pem");
  EXPECT_FALSE(call(grpc::SslCredentials(without_cert)).status.ok());
  EXPECT_FALSE(call(grpc::InsecureChannelCredentials()).status.ok());
}

TEST(ServerHardeningTest, TlsConfigurationErrorsAreReportedAtStart) {
  ServerConfig config = TestConfig();
  config.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_FALSE(ServerApp::Start(config).ok());
  config.tls_key_file = "/nonexistent/key.pem";
  auto app = ServerApp::Start(config);
  ASSERT_FALSE(app.ok());
  EXPECT_NE(app.status().message().find("/nonexistent/cert.pem"), std::string::npos) << app.status();
}

}  // namespace
}  // namespace vqd::server
