// vqd-client: the command-line client of the VQ-Diffusion gRPC service.
//
//   vqd-client [global options] generate (--prompt TEXT | --class-label N) ... --out PREFIX
//   vqd-client [global options] info [--json]
//   vqd-client [global options] health [--service NAME]
//
// Exit codes: 0 success; 1 other failures (INTERNAL, CANCELLED, DEADLINE_EXCEEDED, ...); 2 usage
// error; 3 server unreachable; 4 rejected (RESOURCE_EXHAUSTED, or UNAVAILABLE from a draining
// server); 5 invalid request (INVALID_ARGUMENT); 6 UNAUTHENTICATED / PERMISSION_DENIED;
// 128 + signal number when Ctrl-C (130) or SIGTERM (143) cancelled a generate call.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/cli_args.h"
#include "base/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "vqdiffusion/v1/vqdiffusion.grpc.pb.h"

namespace {

namespace pb = ::vqdiffusion::v1;
namespace health = ::grpc::health::v1;
using Clock = std::chrono::system_clock;

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitUsage = 2,
  kExitUnreachable = 3,
  kExitRejected = 4,
  kExitInvalid = 5,
  kExitAuth = 6,
};

constexpr double kConnectTimeoutSeconds = 5.0;

constexpr char kUsage[] = R"(usage: vqd-client [global options] <command> [command options]

Commands:
  generate --prompt TEXT --out PREFIX [options]
  generate --class-label N --out PREFIX [options]
                            generate images; writes PREFIX-<index>.png
                            (--class-label for class-conditional models, see info)
      --steps N             denoising steps (server default 100)
      --time-stride S       official strided sampling: timesteps T-1, T-1-S, ...
                            and 0 of the whole schedule (steps then follow)
      --prior-rule RULE     uniform or purity: unmask exactly the scheduled
                            number of tokens per step (Improved VQ-Diffusion)
      --prior-weight R      purity only: sharpen confident positions (>= 0)
      --init-image PNG      edit this image (the model's image size) instead of
                            starting from nothing
      --strength X          how much of the chain the edit runs, (0, 1] (default 1)
      --mask PNG            inpainting: white regenerates, black keeps the image
      --preview-every K     a preview every K steps: writes PREFIX-stepNN-<index>.png
                            (small PNGs of the model's current prediction)
      --guidance G          classifier-free guidance scale (server default: the
                            model's, see info)
      --truncation R        truncation rate in (0, 1] (server default: the model's)
      --num-images K        images to generate (server default 1)
      --seed S              random seed (default: the server draws one)
      --progress-every K    a progress event every K steps, 0 for none
                            (default 1 when stderr is a terminal, else 10)
      --priority P          scheduling priority, higher first (default 0)
      --request-id ID       id to use in the server's events and logs
      --save-tokens FILE    write the final token grids as JSON {"tokens": [[...], ...]}
      --quiet               print only errors
  info [--json]             describe the model and the server's limits
  health [--service NAME]   check the server's health; exits 0 only when SERVING

Global options (before or after the command):
  --server HOST:PORT        server address (default localhost:50051)
  --timeout SECONDS         deadline of the whole call, connecting included
                            (default: none; connecting gives up after 5 s)
  --token TOKEN             send "authorization: Bearer TOKEN" with every call
  --tls                     connect with TLS
  --ca-cert FILE            root certificates (PEM) to verify the server with
  --client-cert FILE        client certificate chain (PEM) for mutual TLS
  --client-key FILE         client private key (PEM) for mutual TLS
  --help                    print this text

Exit codes: 0 success, 1 other errors, 2 usage, 3 server unreachable,
4 server busy or draining, 5 invalid request, 6 not authorized, 130 interrupted.
)";

// ---------------------------------------------------------------------------------------------
// Command line

const std::set<std::string> kGlobalValued = {"server", "timeout", "token", "ca-cert", "client-cert", "client-key"};
const std::set<std::string> kGlobalSwitches = {"tls", "help"};

struct CommandSpec {
  std::set<std::string> valued;
  std::set<std::string> switches;
};

const std::map<std::string, CommandSpec>& Commands() {
  static const auto* commands = new std::map<std::string, CommandSpec>{
      {"generate",
       {{"prompt", "class-label", "steps", "time-stride", "prior-rule", "prior-weight", "init-image", "strength", "mask", "preview-every", "guidance", "truncation", "num-images", "seed", "progress-every", "priority", "request-id",
         "out", "save-tokens"},
        {"quiet"}}},
      {"info", {{}, {"json"}}},
      {"health", {{"service"}, {}}},
  };
  return *commands;
}

struct GlobalOptions {
  std::string server = "localhost:50051";
  std::optional<double> timeout;
  std::string token;
  bool tls = false;
  std::string ca_cert, client_cert, client_key;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<GlobalOptions> ParseGlobals(const vqd::CliArgs& args) {
  GlobalOptions g;
  if (auto v = args.Get("server")) g.server = *v;
  if (g.server.empty()) return absl::InvalidArgumentError("--server must not be empty");
  if (args.Has("timeout")) {
    VQD_ASSIGN_OR_RETURN(double t, args.Double("timeout", 0));
    if (!(t > 0) || !std::isfinite(t)) return absl::InvalidArgumentError("--timeout must be a positive number of seconds");
    g.timeout = t;
  }
  g.token = args.Get("token").value_or("");
  g.tls = args.Has("tls");
  g.ca_cert = args.Get("ca-cert").value_or("");
  g.client_cert = args.Get("client-cert").value_or("");
  g.client_key = args.Get("client-key").value_or("");
  if (!g.tls && (!g.ca_cert.empty() || !g.client_cert.empty() || !g.client_key.empty())) {
    return absl::InvalidArgumentError("--ca-cert, --client-cert and --client-key need --tls");
  }
  if (g.client_cert.empty() != g.client_key.empty()) {
    return absl::InvalidArgumentError("--client-cert and --client-key go together");
  }
  return g;
}

// An unsigned option that must fit `max`.
absl::StatusOr<std::optional<uint64_t>> OptionalUint(const vqd::CliArgs& args, const std::string& name,
                                                     uint64_t max) {
  if (!args.Has(name)) return std::optional<uint64_t>();
  VQD_ASSIGN_OR_RETURN(uint64_t v, args.Uint(name, 0));
  if (v > max) return absl::InvalidArgumentError(absl::StrCat("--", name, " must be at most ", max));
  return std::optional<uint64_t>(v);
}

// ---------------------------------------------------------------------------------------------
// Errors

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNRECOGNIZED";
  }
}

// Prints what went wrong with a call on an established connection and returns the exit code.
int ReportCallError(const grpc::Status& status, const GlobalOptions& g) {
  const std::string& msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      std::fprintf(stderr, "error: server busy: %s\n", msg.c_str());
      return kExitRejected;
    case grpc::StatusCode::UNAVAILABLE:
      std::fprintf(stderr, "error: server unavailable (draining or not ready): %s\n", msg.c_str());
      return kExitRejected;
    case grpc::StatusCode::INVALID_ARGUMENT:
      std::fprintf(stderr, "error: invalid request: %s\n", msg.c_str());
      return kExitInvalid;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      std::fprintf(stderr, "error: not authorized (%s): %s%s\n", CodeName(status.error_code()), msg.c_str(),
                   g.token.empty() ? " (the server may need --token)" : "");
      return kExitAuth;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (g.timeout) {
        std::fprintf(stderr, "error: deadline exceeded after --timeout %g s: %s\n", *g.timeout, msg.c_str());
      } else {
        std::fprintf(stderr, "error: deadline exceeded: %s\n", msg.c_str());
      }
      return kExitError;
    default:
      std::fprintf(stderr, "error: call failed (%s): %s\n", CodeName(status.error_code()), msg.c_str());
      return kExitError;
  }
}

// ---------------------------------------------------------------------------------------------
// Connection

class Connection {
 public:
  static absl::StatusOr<Connection> Make(const GlobalOptions& g) {
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (g.tls) {
      grpc::SslCredentialsOptions ssl;
      if (!g.ca_cert.empty()) { VQD_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(g.ca_cert)); }
      if (!g.client_cert.empty()) { VQD_ASSIGN_OR_RETURN(ssl.pem_cert_chain, ReadFile(g.client_cert)); }
      if (!g.client_key.empty()) { VQD_ASSIGN_OR_RETURN(ssl.pem_private_key, ReadFile(g.client_key)); }
      creds = grpc::SslCredentials(ssl);
    } else {
      creds = grpc::InsecureChannelCredentials();
    }
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(256 << 20);  // Images and token grids of big requests.
    Connection c;
    c.options_ = g;
    c.start_ = Clock::now();
    if (g.timeout) {
      c.deadline_ = c.start_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*g.timeout));
    }
    c.channel_ = grpc::CreateCustomChannel(g.server, creds, channel_args);
    return c;
  }

  // Waits for the connection (5 s, or until --timeout's deadline). On failure prints why and
  // returns false.
  bool WaitConnected() {
    const Clock::time_point deadline =
        deadline_ ? *deadline_
                  : start_ + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(kConnectTimeoutSeconds));
    if (channel_->WaitForConnected(deadline)) return true;
    // The channel API does not say why; a short probe call does ("Connection refused", a TLS
    // handshake failure, a name that does not resolve, ...).
    grpc::ClientContext probe;
    probe.set_deadline(Clock::now() + std::chrono::seconds(1));
    health::HealthCheckRequest request;
    health::HealthCheckResponse response;
    grpc::Status status = health::Health::NewStub(channel_)->Check(&probe, request, &response);
    const double waited = std::chrono::duration<double>(Clock::now() - start_).count();
    std::string why = status.ok() || status.error_code() != grpc::StatusCode::UNAVAILABLE
                          ? absl::StrFormat("no connection within %.1f s", waited)
                          : status.error_message();
    std::fprintf(stderr, "error: cannot reach server at %s: %s\n", options_.server.c_str(), why.c_str());
    return false;
  }

  // A context with the call's deadline and the bearer token.
  void Setup(grpc::ClientContext& ctx) const {
    if (deadline_) ctx.set_deadline(*deadline_);
    if (!options_.token.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.token);
  }

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const GlobalOptions& options() const { return options_; }

 private:
  GlobalOptions options_;
  Clock::time_point start_;
  std::optional<Clock::time_point> deadline_;
  std::shared_ptr<grpc::Channel> channel_;
};

// ---------------------------------------------------------------------------------------------
// Ctrl-C: the handler only writes to a pipe; a watcher thread reads it and cancels the call.

int g_signal_pipe[2] = {-1, -1};
std::atomic<int> g_signal{0};

extern "C" void OnSignal(int signo) {
  g_signal.store(signo);
  const char c = 'c';
  const int saved = errno;
  (void)!write(g_signal_pipe[1], &c, 1);
  errno = saved;
}

class CancelOnSignal {
 public:
  explicit CancelOnSignal(grpc::ClientContext* ctx) {
    if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) return;
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    watcher_ = std::thread([ctx] {
      char c = 0;
      while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
      }
      if (c == 'c') ctx->TryCancel();
    });
  }
  ~CancelOnSignal() {
    if (!watcher_.joinable()) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    const char c = 'q';
    (void)!write(g_signal_pipe[1], &c, 1);
    watcher_.join();
    close(g_signal_pipe[0]);
    close(g_signal_pipe[1]);
  }
  CancelOnSignal(const CancelOnSignal&) = delete;
  CancelOnSignal& operator=(const CancelOnSignal&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  std::thread watcher_;
};

// ---------------------------------------------------------------------------------------------
// generate

// Progress output on stderr: a redrawn bar on a terminal, one line per event otherwise.
class ProgressOutput {
 public:
  ProgressOutput(bool quiet, bool tty) : quiet_(quiet), tty_(tty && !quiet) {}
  ~ProgressOutput() { EndBar(); }

  void Line(const std::string& text) {
    if (quiet_) return;
    EndBar();
    std::fprintf(stderr, "%s\n", text.c_str());
    std::fflush(stderr);
  }

  void Queued(const pb::Queued& q) {
    queued_at_ = std::chrono::steady_clock::now();
    Line(absl::StrCat("queued: request ", q.request_id(), " at position ", q.position()));
  }

  void Started(const pb::Started& s) {
    if (queued_at_) queue_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - *queued_at_).count();
    Line(absl::StrCat("started: request ", s.request_id(), " on ", s.device(), ", seed ", s.seed()));
  }

  void Progress(const pb::Progress& p) {
    if (quiet_) return;
    std::string text = absl::StrFormat("step %u/%u t=%u masked %.1f%%", p.step(), p.total_steps(), p.timestep(),
                                       100.0 * p.masked_fraction());
    if (queue_seconds_) text += absl::StrFormat("  queued %.1fs", *queue_seconds_);
    if (!latest_preview_.empty()) text += "  preview " + latest_preview_;
    if (!tty_) {
      Line(text);
      return;
    }
    constexpr int kWidth = 30;
    const int filled = p.total_steps() == 0 ? 0 : static_cast<int>(kWidth * uint64_t{p.step()} / p.total_steps());
    std::string bar(static_cast<size_t>(std::min(filled, kWidth)), '#');
    bar.append(static_cast<size_t>(kWidth - std::min(filled, kWidth)), '.');
    std::fprintf(stderr, "\r[%s] %s\x1b[K", bar.c_str(), text.c_str());
    std::fflush(stderr);
    bar_shown_ = true;
  }

  // The newest preview file, shown in the progress line from now on.
  void SetPreview(const std::string& path) { latest_preview_ = path; }

  // Ends the progress bar's line; returns whether there was one.
  bool EndBar() {
    if (!bar_shown_) return false;
    std::fputc('\n', stderr);
    std::fflush(stderr);
    bar_shown_ = false;
    return true;
  }

 private:
  bool quiet_, tty_;
  bool bar_shown_ = false;
  std::optional<std::chrono::steady_clock::time_point> queued_at_;
  std::optional<double> queue_seconds_;
  std::string latest_preview_;
};

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

absl::Status WriteTokens(const std::string& path, const std::map<uint32_t, pb::TokenGrid>& grids) {
  std::string json = "{\"tokens\": [";
  bool first_grid = true;
  for (const auto& [index, grid] : grids) {
    json += first_grid ? "\n  [" : ",\n  [";
    first_grid = false;
    json += absl::StrJoin(grid.tokens(), ", ");
    json += "]";
  }
  json += "\n]";
  if (!grids.empty()) {
    json += absl::StrCat(", \"height\": ", grids.begin()->second.height(), ", \"width\": ", grids.begin()->second.width());
  }
  json += "}\n";
  return WriteFile(path, json);
}

struct GenerateArgs {
  pb::GenerateRequest request;
  std::string out_prefix;
  std::string save_tokens;
  bool quiet = false;
};

absl::StatusOr<GenerateArgs> ParseGenerate(const vqd::CliArgs& args, bool stderr_tty) {
  constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
  GenerateArgs out;
  pb::GenerateRequest& r = out.request;
  if (args.Has("prompt") == args.Has("class-label")) {
    return absl::InvalidArgumentError("generate takes --prompt (text models) or --class-label (class models)");
  }
  r.set_prompt(args.Get("prompt").value_or(""));
  if (args.Has("class-label")) {
    VQD_ASSIGN_OR_RETURN(int64_t label, args.Int("class-label", 0));
    if (label < std::numeric_limits<int32_t>::min() || label > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError("--class-label must fit a 32-bit signed integer");
    }
    r.set_class_label(static_cast<int32_t>(label));
  }
  VQD_ASSIGN_OR_RETURN(out.out_prefix, args.Required("out"));
  if (out.out_prefix.empty()) return absl::InvalidArgumentError("--out must not be empty");
  out.save_tokens = args.Get("save-tokens").value_or("");
  out.quiet = args.Has("quiet");
  // Only the fields the user gave, so that the server applies its defaults to the others.
  VQD_ASSIGN_OR_RETURN(auto steps, OptionalUint(args, "steps", kU32));
  if (steps) r.set_steps(static_cast<uint32_t>(*steps));
  VQD_ASSIGN_OR_RETURN(auto time_stride, OptionalUint(args, "time-stride", kU32));
  if (time_stride) r.set_time_stride(static_cast<uint32_t>(*time_stride));
  if (auto rule = args.Get("prior-rule")) {
    if (*rule == "uniform") {
      r.set_prior_rule(vqdiffusion::v1::PRIOR_RULE_UNIFORM);
    } else if (*rule == "purity") {
      r.set_prior_rule(vqdiffusion::v1::PRIOR_RULE_PURITY);
    } else if (*rule != "none") {
      return absl::InvalidArgumentError(absl::StrCat("--prior-rule must be none, uniform or purity, got ", *rule));
    }
  }
  if (args.Has("prior-weight")) {
    VQD_ASSIGN_OR_RETURN(double w, args.Double("prior-weight", 0));
    r.set_prior_weight(static_cast<float>(w));
  }
  if (auto image = args.Get("init-image")) {
    VQD_ASSIGN_OR_RETURN(*r.mutable_init_image(), ReadFile(*image));
  }
  if (auto mask = args.Get("mask")) {
    VQD_ASSIGN_OR_RETURN(*r.mutable_mask(), ReadFile(*mask));
  }
  if (args.Has("strength")) {
    VQD_ASSIGN_OR_RETURN(double x, args.Double("strength", 1));
    r.set_strength(static_cast<float>(x));
  }
  VQD_ASSIGN_OR_RETURN(auto num_images, OptionalUint(args, "num-images", kU32));
  if (num_images) r.set_num_images(static_cast<uint32_t>(*num_images));
  VQD_ASSIGN_OR_RETURN(auto seed, OptionalUint(args, "seed", std::numeric_limits<uint64_t>::max()));
  if (seed) r.set_seed(*seed);
  if (args.Has("guidance")) {
    VQD_ASSIGN_OR_RETURN(double g, args.Double("guidance", 0));
    r.set_guidance_scale(static_cast<float>(g));
  }
  if (args.Has("truncation")) {
    VQD_ASSIGN_OR_RETURN(double t, args.Double("truncation", 0));
    r.set_truncation_rate(static_cast<float>(t));
  }
  VQD_ASSIGN_OR_RETURN(auto preview_every, OptionalUint(args, "preview-every", kU32));
  if (preview_every) r.set_preview_interval(static_cast<uint32_t>(*preview_every));
  VQD_ASSIGN_OR_RETURN(auto every, OptionalUint(args, "progress-every", kU32));
  r.set_progress_interval(every ? static_cast<uint32_t>(*every) : out.quiet ? 0 : stderr_tty ? 1 : 10);
  if (args.Has("priority")) {
    VQD_ASSIGN_OR_RETURN(int64_t p, args.Int("priority", 0));
    if (p < std::numeric_limits<int32_t>::min() || p > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError("--priority must fit a 32-bit signed integer");
    }
    r.set_priority(static_cast<int32_t>(p));
  }
  if (auto id = args.Get("request-id")) r.set_request_id(*id);
  return out;
}

int RunGenerate(Connection& conn, const GenerateArgs& args) {
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(args.out_prefix).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) {
      std::fprintf(stderr, "error: cannot create %s: %s\n", parent.c_str(), ec.message().c_str());
      return kExitError;
    }
  }
  if (!conn.WaitConnected()) return kExitUnreachable;

  auto stub = pb::VqDiffusion::NewStub(conn.channel());
  grpc::ClientContext ctx;
  conn.Setup(ctx);
  ProgressOutput out(args.quiet, isatty(STDERR_FILENO) != 0);
  std::map<uint32_t, pb::TokenGrid> grids;
  std::optional<pb::Done> done;
  std::optional<uint64_t> seed;
  absl::Status local_error;
  grpc::Status status;
  {
    CancelOnSignal cancel_on_signal(&ctx);
    std::unique_ptr<grpc::ClientReader<pb::GenerateEvent>> reader = stub->Generate(&ctx, args.request);
    pb::GenerateEvent ev;
    while (reader->Read(&ev)) {
      switch (ev.event_case()) {
        case pb::GenerateEvent::kQueued: out.Queued(ev.queued()); break;
        case pb::GenerateEvent::kStarted:
          seed = ev.started().seed();
          out.Started(ev.started());
          break;
        case pb::GenerateEvent::kProgress: out.Progress(ev.progress()); break;
        case pb::GenerateEvent::kPreview: {
          const pb::Preview& preview = ev.preview();
          for (int i = 0; i < preview.pngs_size(); ++i) {
            const std::string path = absl::StrFormat("%s-step%02u-%d.png", args.out_prefix, preview.step(), i);
            if (absl::Status s = WriteFile(path, preview.pngs(i)); !s.ok()) {
              local_error = s;
              ctx.TryCancel();
              break;
            }
            if (i == 0) out.SetPreview(path);
          }
          break;
        }
        case pb::GenerateEvent::kImage: {
          const pb::Image& img = ev.image();
          seed = img.seed();
          const std::string path = absl::StrCat(args.out_prefix, "-", img.index(), ".png");
          if (absl::Status s = WriteFile(path, img.png()); !s.ok()) {
            local_error = s;
            ctx.TryCancel();
            break;
          }
          if (!args.save_tokens.empty()) grids[img.index()] = img.grid();
          out.EndBar();
          if (!args.quiet) {
            std::printf("wrote %s (%ux%u, seed %" PRIu64 ")\n", path.c_str(), img.width(), img.height(), img.seed());
            std::fflush(stdout);
          }
          break;
        }
        case pb::GenerateEvent::kDone: done = ev.done(); break;
        case pb::GenerateEvent::EVENT_NOT_SET: break;  // An event type newer than this client.
      }
    }
    status = reader->Finish();
  }
  const bool bar_was_shown = out.EndBar();
  if (int signo = g_signal.load(); signo != 0) {
    // The terminal echoed "^C" at the end of the last line.
    if (isatty(STDERR_FILENO) && !bar_was_shown) std::fputc('\n', stderr);
    std::fprintf(stderr, "interrupted: call cancelled\n");
    return 128 + signo;
  }
  if (!local_error.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(local_error.message()).c_str());
    return kExitError;
  }
  if (!status.ok()) return ReportCallError(status, conn.options());
  if (!done) {
    std::fprintf(stderr, "error: the stream ended without a Done event\n");
    return kExitError;
  }
  if (!args.save_tokens.empty()) {
    if (absl::Status s = WriteTokens(args.save_tokens, grids); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      return kExitError;
    }
  }
  if (!args.quiet) {
    std::printf("done: request %s, %u steps, seed %s; queue %.2fs, encode %.2fs, denoise %.2fs, decode %.2fs, "
                "total %.2fs\n",
                done->request_id().c_str(), done->steps(), seed ? std::to_string(*seed).c_str() : "?",
                done->queue_seconds(), done->encode_seconds(), done->denoise_seconds(), done->decode_seconds(),
                done->total_seconds());
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// info and health

int RunInfo(Connection& conn, bool json) {
  if (!conn.WaitConnected()) return kExitUnreachable;
  grpc::ClientContext ctx;
  conn.Setup(ctx);
  pb::ModelInfo info;
  grpc::Status status = pb::VqDiffusion::NewStub(conn.channel())->GetModelInfo(&ctx, pb::GetModelInfoRequest(), &info);
  if (!status.ok()) return ReportCallError(status, conn.options());
  if (json) {
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    std::string text;
    auto s = google::protobuf::util::MessageToJsonString(info, &text, options);
    if (!s.ok()) {
      std::fprintf(stderr, "error: cannot print ModelInfo as JSON: %s\n", s.ToString().c_str());
      return kExitError;
    }
    std::printf("%s", text.c_str());
    if (text.empty() || text.back() != '\n') std::printf("\n");
    return kExitOk;
  }
  const pb::Limits& lim = info.limits();
  const std::vector<std::pair<std::string, std::string>> rows = {
      {"model", info.model_name()},
      {"server version", info.server_version()},
      {"image", absl::StrCat(info.image_width(), " x ", info.image_height(), " pixels")},
      {"token grid", absl::StrCat(info.grid_width(), " x ", info.grid_height())},
      {"codebook", absl::StrCat(info.codebook_size(), " codes (mask token ", info.mask_token(), ")")},
      {"timesteps", absl::StrCat(info.num_train_timesteps())},
      {"prompt tokens", absl::StrCat(info.max_prompt_tokens())},
      {"devices", info.devices().empty() ? "-" : absl::StrJoin(info.devices(), ", ")},
      {"dtype", info.dtype()},
      {"conditioning", info.conditioning() == "class_label"
                           ? absl::StrCat("class label in [0, ", info.num_classes(), ")")
                           : std::string("text prompt")},
      {"null embeddings", info.learned_null_embeddings() ? "learned"
                          : info.conditioning() == "class_label" ? "mean class" : "empty prompt"},
      {"sampler", absl::StrCat(info.sampler(), " (defaults: guidance ", info.default_guidance_scale(),
                               ", truncation ", info.default_truncation_rate(), ")")},
      {"limits", absl::StrCat("max_images ", lim.max_images(), ", max_steps ", lim.max_steps(), ", max_batch_rows ",
                              lim.max_batch_rows(), ", max_queue ", lim.max_queue(), ", max_prompt_bytes ",
                              lim.max_prompt_bytes())},
  };
  for (const auto& [name, value] : rows) std::printf("%-17s%s\n", (name + ":").c_str(), value.c_str());
  return kExitOk;
}

int RunHealth(Connection& conn, const std::string& service) {
  if (!conn.WaitConnected()) return kExitUnreachable;
  grpc::ClientContext ctx;
  conn.Setup(ctx);
  health::HealthCheckRequest request;
  request.set_service(service);
  health::HealthCheckResponse response;
  grpc::Status status = health::Health::NewStub(conn.channel())->Check(&ctx, request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) {
    std::fprintf(stderr, "error: the server does not know service \"%s\": %s\n", service.c_str(),
                 status.error_message().c_str());
    return kExitError;
  }
  if (!status.ok()) return ReportCallError(status, conn.options());
  std::printf("%s\n", health::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return response.status() == health::HealthCheckResponse::SERVING ? kExitOk : kExitError;
}

// ---------------------------------------------------------------------------------------------

int UsageError(const std::string& message) {
  std::fprintf(stderr, "error: %s\n\n%s", message.c_str(), kUsage);
  return kExitUsage;
}

std::set<std::string> Union(std::set<std::string> a, const std::set<std::string>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

int Main(int argc, char** argv) {
  const std::vector<std::string> argv_list(argv + 1, argv + argc);
  for (const std::string& a : argv_list) {
    if (a == "-h" || a == "--help") {
      std::printf("%s", kUsage);
      return kExitOk;
    }
    if (a == "--") break;
  }
  // First pass: find the command word, whatever options surround it.
  std::set<std::string> all_valued = kGlobalValued, all_switches = kGlobalSwitches;
  for (const auto& [name, spec] : Commands()) {
    all_valued = Union(all_valued, spec.valued);
    all_switches = Union(all_switches, spec.switches);
  }
  auto first = vqd::CliArgs::Parse(argv_list, all_valued, all_switches);
  if (!first.ok()) return UsageError(std::string(first.status().message()));
  if (first->positional().empty()) return UsageError("no command given");
  const std::string command = first->positional().front();
  auto it = Commands().find(command);
  if (it == Commands().end()) return UsageError(absl::StrCat("unknown command \"", command, "\""));
  // Second pass: only the global options and those of this command.
  auto args = vqd::CliArgs::Parse(argv_list, Union(kGlobalValued, it->second.valued),
                                  Union(kGlobalSwitches, it->second.switches));
  if (!args.ok()) return UsageError(absl::StrCat(command, ": ", args.status().message()));
  if (args->positional().size() > 1) {
    return UsageError(absl::StrCat("unexpected argument \"", args->positional()[1], "\""));
  }
  auto globals = ParseGlobals(*args);
  if (!globals.ok()) return UsageError(std::string(globals.status().message()));

  std::optional<GenerateArgs> generate;
  if (command == "generate") {
    auto parsed = ParseGenerate(*args, isatty(STDERR_FILENO) != 0);
    if (!parsed.ok()) return UsageError(absl::StrCat("generate: ", parsed.status().message()));
    generate = std::move(*parsed);
  }
  auto conn = Connection::Make(*globals);
  if (!conn.ok()) return UsageError(std::string(conn.status().message()));

  if (command == "generate") return RunGenerate(*conn, *generate);
  if (command == "info") return RunInfo(*conn, args->Has("json"));
  return RunHealth(*conn, args->Get("service").value_or(""));
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
