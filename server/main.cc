// vqd-server: the VQ-Diffusion gRPC inference service.
#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "base/cpu_count.h"
#include "base/torch_util.h"
#include "server/auth.h"
#include "server/server_app.h"

ABSL_FLAG(std::string, model, "",
          "Model directory in the diffusers layout (as downloaded from the Hugging Face hub). Empty: a tiny "
          "random model the server creates on first start in its cache folder ($VQD_CACHE_DIR or ~/.cache/vqd).");
ABSL_FLAG(std::string, listen, "0.0.0.0:50051", "gRPC address to listen on (port 0: any free port).");
ABSL_FLAG(int, metrics_port, 9464, "Port of the Prometheus /metrics endpoint (0: any free port, -1: none).");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0", "Address the metrics endpoint binds to.");
ABSL_FLAG(std::string, devices, "auto",
          "Comma-separated devices, a worker and a copy of the model each (cpu, cuda, cuda:N; a device may repeat). "
          "auto: every CUDA device, else cpu.");
ABSL_FLAG(std::string, dtype, "auto", "fp16, bf16 or fp32. auto: fp16 on CUDA, fp32 on CPU.");
ABSL_FLAG(std::string, variant, "auto", "Weights files to load: fp16 (*.fp16.*), full, or auto (fp16 files for fp16).");
ABSL_FLAG(int, max_batch, 64, "Most transformer rows per denoising step on a device (an image costs 2 with guidance).");
ABSL_FLAG(int, max_queue, 256, "Most requests waiting for a batch; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(double, priority_aging, 0,
          "Seconds of waiting worth one priority level, so low priorities cannot starve under sustained load. "
          "0: strict priorities (a waiting request is overtaken by every later one of higher priority).");
ABSL_FLAG(double, budget_recovery, 30,
          "After out of device memory lowers a device's rows per step, seconds without another one before the "
          "budget grows back by an eighth of --max_batch.");
ABSL_FLAG(int, max_images, 16, "Most images one request may ask for.");
ABSL_FLAG(int, max_prompt_bytes, 4096, "Most bytes in a prompt.");
ABSL_FLAG(int, max_message_bytes, 1 << 20, "Largest request message the server accepts, in bytes.");
ABSL_FLAG(double, stalled_stream_timeout, 60,
          "Seconds a Generate stream may go without the client accepting a write before the call is cancelled "
          "and its request's resources freed.");
ABSL_FLAG(int64_t, max_stream_buffer_bytes, 64 << 20,
          "Most bytes of events one Generate stream may hold for a client that reads slower than they come; "
          "beyond it the call is cancelled.");
ABSL_FLAG(double, testing_oom_rate, 0,
          "Testing only: fail this fraction of the denoising steps that batch several requests with an injected "
          "out-of-memory error, to soak-test recovery (0: off).");
ABSL_FLAG(double, grace_period, 30, "Seconds running requests get to finish after SIGTERM before they are failed.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding a bearer token that every call except health must send as 'authorization: Bearer <token>'.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve over TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert.");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle: require and verify client certificates (mutual TLS).");
ABSL_FLAG(bool, reflection, true, "Serve gRPC server reflection (always off when --auth-token-file is set).");
ABSL_FLAG(std::string, ready_file, "", "Write {\"grpc_port\": N, \"metrics_port\": M} here once serving.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn or error.");

namespace {

absl::StatusOr<std::vector<torch::Device>> ParseDevices(const std::string& spec) {
  std::vector<torch::Device> devices;
  if (spec == "auto") {
    const int64_t n = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
    for (int64_t i = 0; i < n; ++i) devices.emplace_back(torch::kCUDA, static_cast<c10::DeviceIndex>(i));
    if (devices.empty()) devices.emplace_back(torch::kCPU);
    return devices;
  }
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    auto device = vqd::ParseDevice(std::string(part));
    if (!device.ok()) return device.status();
    devices.push_back(*device);
  }
  if (devices.empty()) return absl::InvalidArgumentError("--devices is empty");
  return devices;
}

absl::StatusOr<vqd::server::ServerConfig> ConfigFromFlags() {
  vqd::server::ServerConfig c;
  c.model_dir = absl::GetFlag(FLAGS_model);
  c.listen = absl::GetFlag(FLAGS_listen);
  c.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  c.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  auto devices = ParseDevices(absl::GetFlag(FLAGS_devices));
  if (!devices.ok()) return devices.status();
  c.devices = *devices;
  const std::string dtype = absl::GetFlag(FLAGS_dtype);
  if (dtype == "auto") {
    c.dtype = c.devices.front().is_cuda() ? torch::kFloat16 : torch::kFloat32;
  } else {
    auto parsed = vqd::ParseDtype(dtype);
    if (!parsed.ok()) return parsed.status();
    c.dtype = *parsed;
  }
  const std::string variant = absl::GetFlag(FLAGS_variant);
  if (variant == "fp16" || variant == "full") {
    c.variant = variant == "fp16" ? "fp16" : "";
  } else if (variant != "auto") {
    return absl::InvalidArgumentError("--variant must be fp16, full or auto");
  }
  auto positive = [](const char* name, int value) -> absl::Status {
    if (value < 1) return absl::InvalidArgumentError(absl::StrCat("--", name, " must be at least 1"));
    return absl::OkStatus();
  };
  for (auto [name, value] : {std::pair<const char*, int>{"max_batch", absl::GetFlag(FLAGS_max_batch)},
                             {"max_queue", absl::GetFlag(FLAGS_max_queue)},
                             {"max_images", absl::GetFlag(FLAGS_max_images)},
                             {"max_prompt_bytes", absl::GetFlag(FLAGS_max_prompt_bytes)},
                             {"max_message_bytes", absl::GetFlag(FLAGS_max_message_bytes)}}) {
    if (auto s = positive(name, value); !s.ok()) return s;
  }
  c.max_batch_rows = absl::GetFlag(FLAGS_max_batch);
  c.max_queue = static_cast<size_t>(absl::GetFlag(FLAGS_max_queue));
  c.limits.max_images = absl::GetFlag(FLAGS_max_images);
  c.limits.max_prompt_bytes = absl::GetFlag(FLAGS_max_prompt_bytes);
  c.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  const double stalled = absl::GetFlag(FLAGS_stalled_stream_timeout);
  if (!(stalled > 0) || !std::isfinite(stalled)) return absl::InvalidArgumentError("--stalled_stream_timeout must be > 0");
  c.streams.stalled_timeout = absl::Seconds(stalled);
  c.streams.max_pending_bytes = absl::GetFlag(FLAGS_max_stream_buffer_bytes);
  if (c.streams.max_pending_bytes < (1 << 20)) {
    return absl::InvalidArgumentError("--max_stream_buffer_bytes must be at least 1 MiB (1048576)");
  }
  const double grace = absl::GetFlag(FLAGS_grace_period);
  if (!(grace >= 0)) return absl::InvalidArgumentError("--grace_period must be >= 0");
  c.grace_period = absl::Seconds(grace);
  const double aging = absl::GetFlag(FLAGS_priority_aging);
  if (!(aging >= 0) || !std::isfinite(aging)) return absl::InvalidArgumentError("--priority_aging must be >= 0");
  c.priority_aging = absl::Seconds(aging);
  const double recovery = absl::GetFlag(FLAGS_budget_recovery);
  if (!(recovery > 0) || !std::isfinite(recovery)) return absl::InvalidArgumentError("--budget_recovery must be > 0");
  c.budget_recovery_interval = absl::Seconds(recovery);
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    auto token = vqd::server::ReadTokenFile(path);
    if (!token.ok()) return token.status();
    c.auth_token = *token;
  }
  c.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  c.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  c.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  c.reflection = absl::GetFlag(FLAGS_reflection);
  c.ready_file = absl::GetFlag(FLAGS_ready_file);
  return c;
}

// Abseil names flags with underscores; accept --grace-period for --grace_period too.
std::vector<char*> NormalizeFlagNames(int argc, char** argv, std::vector<std::string>& storage) {
  storage.assign(argv, argv + argc);
  for (size_t i = 1; i < storage.size(); ++i) {
    std::string& arg = storage[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const size_t end = std::min(arg.find('='), arg.size());
    std::replace(arg.begin() + 2, arg.begin() + static_cast<long>(end), '-', '_');
  }
  std::vector<char*> out;
  for (auto& s : storage) out.push_back(s.data());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // SIGTERM and SIGINT are taken by a dedicated thread (sigwait); block them everywhere else,
  // before any thread exists so that every thread inherits the mask. This comes first: PyTorch's
  // libtorch starts its thread pool as soon as its size is set (ConfigureCpuThreads), and a pool
  // thread with the signal unblocked would take SIGTERM's default action and kill the process.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const int cpu_threads = vqd::ConfigureCpuThreads();
  absl::SetProgramUsageMessage(
      "the VQ-Diffusion gRPC inference service.\n\n  vqd-server [--model DIR] [--listen HOST:PORT] [--devices ...] "
      "[--dtype ...] ...\n\nWithout --model it serves a tiny random model it creates itself.");
  std::vector<std::string> arg_storage;
  std::vector<char*> args = NormalizeFlagNames(argc, argv, arg_storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  spdlog::set_level(spdlog::level::from_str(absl::GetFlag(FLAGS_log_level)));
  spdlog::info("CPU: {} libtorch threads ({} CPUs available to the process)", cpu_threads, vqd::AvailableCpus());

  absl::StatusOr<vqd::server::ServerConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "vqd-server: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  vqd::engine::FaultHooks faults;
  if (const double rate = absl::GetFlag(FLAGS_testing_oom_rate); rate > 0) {
    if (!(rate < 1)) {
      std::fprintf(stderr, "vqd-server: --testing_oom_rate must be in [0, 1)\n");
      return 2;
    }
    spdlog::warn("TESTING: injecting out-of-memory errors into {:.1f}% of the steps that batch several requests",
                 100 * rate);
    // Only batches of several requests fail, so the retry in halves always gets through: every
    // request should still end well, which is what the soak test checks.
    faults.step = [rate, mu = std::make_shared<std::mutex>(), rng = std::make_shared<std::mt19937_64>(20261202)](
                      const std::vector<const vqd::engine::GenerationRequest*>& batch) -> absl::Status {
      if (batch.size() < 2) return absl::OkStatus();
      std::lock_guard<std::mutex> lock(*mu);
      if (std::uniform_real_distribution<double>(0, 1)(*rng) >= rate) return absl::OkStatus();
      return absl::ResourceExhaustedError("CUDA out of memory (injected by --testing-oom-rate)");
    };
  }
  absl::StatusOr<std::unique_ptr<vqd::server::ServerApp>> app = vqd::server::ServerApp::Start(*config, faults);
  if (!app.ok()) {
    spdlog::critical("cannot start: {}", std::string(app.status().message()));
    return 1;
  }

  std::thread signal_thread([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("received {}: draining (grace period {}s)", signal == SIGTERM ? "SIGTERM" : "SIGINT",
                 absl::ToDoubleSeconds(config->grace_period));
    // A second signal stops at once.
    std::thread([&] {
      int again = 0;
      sigwait(&signals, &again);
      spdlog::warn("second signal: exiting without finishing the drain");
      std::_Exit(1);
    }).detach();
    (*app)->Drain(config->grace_period);
  });
  (*app)->Wait();
  signal_thread.join();
  app->reset();
  spdlog::info("vqd-server stopped");
  return 0;
}
