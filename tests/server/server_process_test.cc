// The vqd-server binary as an operator runs it: start-up on a free port, SIGTERM drain (health
// NOT_SERVING, new calls UNAVAILABLE, accepted requests finish, exit 0), the grace period's end,
// and a clear non-zero exit for a missing or corrupt model directory.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "common/test_model.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server_test_util.h"

namespace vqd::testing {
namespace {
namespace fs = std::filesystem;
namespace v1 = vqdiffusion::v1;

class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> args) {
    dir_ = fs::temp_directory_path() / ("vqd-process-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(dir_);
    args.insert(args.begin(), VQD_SERVER_BINARY);
    args.push_back("--ready-file=" + (dir_ / "ready.json").string());
    log_ = (dir_ / "server.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      FILE* log = std::freopen(log_.c_str(), "w", stdout);
      (void)log;
      dup2(fileno(stdout), STDERR_FILENO);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~ServerProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  // Waits for the ready file; returns the gRPC port or -1 if the process died or timed out.
  int WaitReady(double seconds = 60) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(dir_ / "ready.json");
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::smatch m;
      if (std::regex_search(text, m, std::regex("\"grpc_port\": (\\d+)"))) return std::stoi(m[1]);
      if (Exited(0)) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  void Signal(int sig) { kill(pid_, sig); }
  // True once the process exited (waits up to `seconds`); its status is then in exit_code().
  bool Exited(double seconds) {
    if (exited_) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    do {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < deadline);
    return false;
  }
  int exit_code() const { return exit_code_; }
  std::string Log() const {
    std::ifstream in(log_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

 private:
  static inline int counter_ = 0;
  fs::path dir_;
  std::string log_;
  pid_t pid_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

std::vector<std::string> BaseArgs() {
  return {"--model=" + TinyRandomModelDir(), "--listen=127.0.0.1:0", "--metrics-port=-1", "--max-batch=2",
          "--devices=cpu"};
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(int port) {
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  return status.ok() ? response.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
}

v1::GenerateRequest LongRequest(uint64_t seed) {
  v1::GenerateRequest r;
  r.set_prompt("a long request");
  r.set_steps(100);
  r.set_num_images(1);  // with guidance: 2 rows, the whole batch
  r.set_seed(seed);
  return r;
}

std::vector<v1::GenerateRequest> LongRequests(int n) {
  std::vector<v1::GenerateRequest> requests;
  for (int i = 0; i < n; ++i) requests.push_back(LongRequest(static_cast<uint64_t>(i)));
  return requests;
}

TEST(ServerProcessTest, SigtermDrainsAcceptedRequestsAndExitsZero) {
  std::vector<std::string> args = BaseArgs();
  args.push_back("--grace-period=60");
  ServerProcess server(args);
  const int port = server.WaitReady();
  ASSERT_GT(port, 0) << server.Log();
  EXPECT_EQ(Health(port), grpc::health::v1::HealthCheckResponse::SERVING);
  auto stub = MakeStub(port);

  // Six requests that run one at a time (the batch holds one).
  ConcurrentCalls calls(*stub, LongRequests(6));
  // Wait until they are all accepted, then ask the server to stop.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server.Signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Health(port), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  StreamResult refused = Generate(*stub, LongRequest(99));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.status.error_message();
  const std::vector<StreamResult> results = calls.Join();
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].images().size(), 1u);
  }
  ASSERT_TRUE(server.Exited(30)) << server.Log();
  EXPECT_EQ(server.exit_code(), 0) << server.Log();
  EXPECT_NE(server.Log().find("drained cleanly"), std::string::npos) << server.Log();
}

TEST(ServerProcessTest, GracePeriodEndFailsWhatIsLeftAndStillExitsZero) {
  std::vector<std::string> args = BaseArgs();
  args.push_back("--grace-period=0.2");
  ServerProcess server(args);
  const int port = server.WaitReady();
  ASSERT_GT(port, 0) << server.Log();
  auto stub = MakeStub(port);
  ConcurrentCalls calls(*stub, LongRequests(6));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  server.Signal(SIGTERM);
  const std::vector<StreamResult> results = calls.Join();
  int unavailable = 0;
  for (const auto& r : results) {
    if (r.status.error_code() == grpc::StatusCode::UNAVAILABLE) ++unavailable;
    else EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  }
  EXPECT_GT(unavailable, 0) << "six 100-step requests cannot all finish in 0.2 s";
  ASSERT_TRUE(server.Exited(30)) << server.Log();
  EXPECT_EQ(server.exit_code(), 0) << server.Log();
}

TEST(ServerProcessTest, MissingModelDirectoryIsAClearStartupError) {
  ServerProcess server({"--model=/nonexistent/model", "--listen=127.0.0.1:0", "--metrics-port=-1"});
  ASSERT_TRUE(server.Exited(60));
  EXPECT_EQ(server.exit_code(), 1);
  EXPECT_NE(server.Log().find("model directory /nonexistent/model does not exist"), std::string::npos) << server.Log();
}

TEST(ServerProcessTest, CorruptWeightsAreAClearStartupError) {
  const fs::path dir = fs::temp_directory_path() / ("vqd-corrupt-model-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::copy(TinyRandomModelDir(), dir, fs::copy_options::recursive);
  {
    std::ofstream out(dir / "vqvae" / "diffusion_pytorch_model.safetensors", std::ios::trunc | std::ios::binary);
    out << "this is not a safetensors file";
  }
  ServerProcess server({"--model=" + dir.string(), "--listen=127.0.0.1:0", "--metrics-port=-1"});
  ASSERT_TRUE(server.Exited(60));
  EXPECT_EQ(server.exit_code(), 1);
  EXPECT_NE(server.Log().find("vqvae/diffusion_pytorch_model.safetensors"), std::string::npos) << server.Log();
  fs::remove_all(dir);
}

TEST(ServerProcessTest, BadFlagsAreAUsageError) {
  ServerProcess server({"--model=" + TinyRandomModelDir(), "--max-batch=0"});
  ASSERT_TRUE(server.Exited(30));
  EXPECT_EQ(server.exit_code(), 2);
  EXPECT_NE(server.Log().find("--max_batch must be at least 1"), std::string::npos) << server.Log();

  ServerProcess aging({"--model=" + TinyRandomModelDir(), "--priority-aging=-1"});
  ASSERT_TRUE(aging.Exited(30));
  EXPECT_EQ(aging.exit_code(), 2);
  EXPECT_NE(aging.Log().find("--priority_aging must be >= 0"), std::string::npos) << aging.Log();
}

}  // namespace
}  // namespace vqd::testing
