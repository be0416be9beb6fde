// The service under faults and hostile calls: an error in one request's step, device memory
// running out, missing or wrong bearer tokens, TLS with client certificates, oversized messages.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "common/test_model.h"
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
    }
  }
  EXPECT_GT(injected.load(), 0);
  const std::string metrics = ScrapeMetrics((*app)->metrics_port());
  EXPECT_EQ(MetricValue(metrics, "vqd_requests_total{outcome=\"error\"}"), 1);
  EXPECT_TRUE(Generate(*stub, Request("after", 1, 3)).status.ok());  // still serving
}

TEST(ServerHardeningTest, OutOfMemoryShrinksTheBatchAndRetriesInsteadOfFailing) {
  // A device that "runs out of memory" above 4 rows (2 guided images).
  std::atomic<int> ooms{0};
  auto hook = [&](const std::vector<const engine::GenerationRequest*>& batch) -> absl::Status {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    if (Rows(batch) > 4) {
      ++ooms;
      return absl::ResourceExhaustedError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)");
    }
    return absl::OkStatus();
  };
  auto app = ServerApp::Start(TestConfig(), hook);
  ASSERT_TRUE(app.ok()) << app.status();
  auto stub = MakeStub((*app)->grpc_port());
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(Request("r" + std::to_string(i), 100 + i));
  std::vector<StreamResult> results = RunConcurrently(*stub, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    StreamResult alone = Generate(*stub, requests[i]);
    ASSERT_TRUE(alone.status.ok());
    EXPECT_EQ(alone.final_grids(), results[i].final_grids()) << i;
  }
  EXPECT_GT(ooms.load(), 0) << "the requests never shared a batch of more than 4 rows";
  EXPECT_LE((*app)->engine().worker(0).row_budget(), 4);
  EXPECT_EQ(MetricValue(ScrapeMetrics((*app)->metrics_port()), "vqd_requests_total{outcome=\"error\"}"), 0);
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
