// vqd-bench: what the service costs. Prints markdown tables (device, date and command included)
// that bench/RESULTS.md collects.
//
//   vqd-bench pipeline --model DIR [--device D] [--dtype T] [--images 1,8,32] [--steps N] [--guidance G]
//       In-process pipeline: one request of K images per row of the table. End-to-end seconds,
//       images/s, seconds per step, the transformer alone (rows/forward, ms, TFLOP/s), peak memory.
//   vqd-bench server --model DIR [--device D] [--dtype T] [--max-batch R] [--clients 1,8,64]
//                    [--requests-per-client K] [--steps N] [--guidance G] [--images K] [--unbatched-baseline]
//       The real gRPC service on loopback with C concurrent streaming clients: images/s, latency
//       p50/p99, time from a request starting to run to its first progress event. With
//       --unbatched-baseline the same load also runs against a server whose batch holds one
//       request (no cross-request batching), side by side.
//   vqd-bench server --server HOST:PORT ...   the same against a server that is already running.
//   vqd-bench agreement --model DIR [--device D] [--dtype fp16|bf16] [--seeds K] [--steps N]
//                       [--min-agreement F]
//       Final token grids of K seeds in half precision against float32 on the same device:
//       the share of tokens that agree. Exits 3 when that share is below F (default 0.9: bf16 on
//       the CPU with the small random model, the pessimistic case, measured 0.94; see RESULTS.md).
//   vqd-bench fidelity --model DIR [--device D] [--dtypes fp16,bf16] [--seeds K] [--steps N] [--every E]
//                      [--max-kl X] [--min-agreement F] [--max-ratio R]
//       Per-step divergence of the half-precision paths (plain and fast) from float32, teacher
//       forced: at every E-th step of a float32 run each path sees the same input tokens, and the
//       KL divergence and argmax agreement of their log p(x_0) distributions are recorded.
//       Exits 3 when a path's mean KL is above X (default: no limit) or its mean argmax agreement
//       below F (default 0: no limit), or when a fast path's mean KL or disagreement is more than
//       R times the plain path's of the same dtype (default 2, the fast path's goal; 0: no limit).
// Every mode takes --json FILE to also write its results as JSON (bench/gpu_check.sh reads them),
// written before the thresholds are checked; pipeline and server take --fused auto|on|off (the
// fast path; auto: on for CUDA in half precision). Exit status: 0 ok, 1 error, 2 usage, 3 a
// threshold was not met (each failed one is printed with its measured value).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <fstream>
#include <numeric>
#include <thread>

#include <nlohmann/json.hpp>

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/cli_args.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/guidance.h"
#include "diffusion/kernels/posterior_gumbel.h"
#include "diffusion/q_posterior.h"
#include "diffusion/truncation.h"
#include "pipeline/generate.h"
#include "pipeline/transformer_runner.h"
#include "server/server_app.h"
#include "transformer_flops.h"
#include "vqdiffusion/v1/vqdiffusion.grpc.pb.h"

namespace {

namespace v1 = vqdiffusion::v1;
using Clock = std::chrono::steady_clock;
using vqd::CliArgs;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (values[hi] - values[lo]) * (rank - static_cast<double>(lo));
}

double PeakRssGiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB
}

absl::StatusOr<std::vector<int64_t>> IntList(const CliArgs& args, const std::string& name, const std::string& fallback) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(args.Get(name).value_or(fallback), ',', absl::SkipEmpty())) {
    int64_t v;
    if (!absl::SimpleAtoi(part, &v) || v < 1) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " takes positive integers separated by commas"));
    }
    out.push_back(v);
  }
  return out;
}

void Sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

std::string Header(const std::string& what, const std::string& device) {
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M", std::localtime(&now));
  const char* blas = std::getenv("BLIS_NUM_THREADS");
  return absl::StrFormat("### %s (%s, %s, libtorch %s, %u CPU threads, %d intra-op, BLIS_NUM_THREADS=%s)\n", what,
                         device, date, TORCH_VERSION, std::thread::hardware_concurrency(), at::get_num_threads(),
                         blas != nullptr ? blas : "unset");
}

absl::Status ProfileStep(vqd::pipeline::VqDiffusionPipeline& pipeline, int64_t images, double guidance);

// --fused auto|on|off: unset (the pipeline's default), or forced.
absl::StatusOr<std::optional<bool>> FusedOption(const CliArgs& args) {
  const std::string value = args.Get("fused").value_or("auto");
  if (value == "auto") return std::optional<bool>();
  if (value == "on" || value == "off") return std::optional<bool>(value == "on");
  return absl::InvalidArgumentError("--fused takes auto, on or off");
}

// "fast path (buckets 2..64, CUDA graphs)" or "reference path".
std::string PathLabel(const vqd::pipeline::PipelineInfo& info) {
  if (!info.fused) return "reference path";
  if (info.row_buckets.empty()) return "fast path, eager";
  return absl::StrFormat("fast path, row buckets %d..%d, %s", info.row_buckets.front(), info.row_buckets.back(),
                         info.cuda_graphs ? "CUDA graphs" : "no CUDA graphs");
}

nlohmann::json InfoJson(const vqd::pipeline::PipelineInfo& info) {
  return {{"device", info.device.str()},   {"dtype", vqd::DtypeName(info.dtype)}, {"model", info.model_name},
          {"fused", info.fused},           {"row_buckets", info.row_buckets},    {"cuda_graphs", info.cuda_graphs},
          {"load_seconds", info.load_seconds}};
}

// A measurement that ran but missed its threshold: main exits 3 for these, 1 for errors.
absl::Status ThresholdFailed(const std::vector<std::string>& failures) {
  return absl::OutOfRangeError(absl::StrCat("threshold not met: ", absl::StrJoin(failures, "; ")));
}

// A fraction flag in [0, 1].
absl::StatusOr<double> FractionFlag(const CliArgs& args, const std::string& name, double fallback) {
  VQD_ASSIGN_OR_RETURN(double value, args.Double(name, fallback));
  if (!(value >= 0 && value <= 1)) return absl::InvalidArgumentError(absl::StrCat("--", name, " must be in [0, 1]"));
  return value;
}

absl::Status WriteJson(const CliArgs& args, const nlohmann::json& json) {
  const auto path = args.Get("json");
  if (!path) return absl::OkStatus();
  std::ofstream out(*path);
  out << json.dump(2) << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", *path));
  return absl::OkStatus();
}

nlohmann::json OptionalJson(const std::optional<double>& value) {
  nlohmann::json json;  // null
  if (value.has_value()) json = value.value();
  return json;
}

std::optional<double> PeakDeviceGiB(const torch::Device& device) {
  const auto memory = vqd::QueryDeviceMemory(device);
  if (!memory) return std::nullopt;
  return static_cast<double>(memory->peak_allocated_bytes) / 1073741824.0;
}

// One transformer pass as DenoiseStep runs it (reference or fast path, CUDA graph included), over
// `tokens` with the unconditional text context (a stand-in for real prompts: the transformer's
// cost does not depend on the text).
class TransformerPass {
 public:
  TransformerPass(vqd::pipeline::VqDiffusionPipeline& pipeline, torch::Tensor tokens, int64_t timestep)
      : pipeline_(pipeline), pieces_{{std::move(tokens), timestep, nullptr}} {}
  torch::Tensor Run() const {
    vqd::pipeline::StepUpload upload(pipeline_.info().device);
    const auto pass = pipeline_.transformer_runner().Prepare(pieces_, upload);
    upload.Upload();
    return pipeline_.transformer_runner().Run(pass, upload);
  }

 private:
  vqd::pipeline::VqDiffusionPipeline& pipeline_;
  std::vector<vqd::pipeline::RowPiece> pieces_;
};

absl::Status RunPipelineBench(const CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::string model_dir, args.Required("model"));
  vqd::pipeline::PipelineOptions options;
  VQD_ASSIGN_OR_RETURN(options.device, vqd::ParseDevice(args.Get("device").value_or("cpu")));
  VQD_ASSIGN_OR_RETURN(options.dtype, vqd::ParseDtype(args.Get("dtype").value_or("fp32")));
  VQD_ASSIGN_OR_RETURN(std::vector<int64_t> image_counts, IntList(args, "images", "1,4"));
  VQD_ASSIGN_OR_RETURN(int64_t steps, args.Int("steps", 20));
  VQD_ASSIGN_OR_RETURN(double guidance, args.Double("guidance", 5.0));
  VQD_ASSIGN_OR_RETURN(options.fused, FusedOption(args));
  // The fast path's buckets cover the largest request of the table.
  const int64_t max_rows =
      vqd::pipeline::VqDiffusionPipeline::RowsFor(*std::max_element(image_counts.begin(), image_counts.end()), guidance > 1);
  VQD_ASSIGN_OR_RETURN(options.graph_max_rows, args.Int("graph-rows", max_rows));
  VQD_ASSIGN_OR_RETURN(auto pipeline, vqd::pipeline::VqDiffusionPipeline::Load(model_dir, options));
  const auto& info = pipeline->info();
  nlohmann::json json = {{"mode", "pipeline"}, {"info", InfoJson(info)}, {"steps", steps}, {"guidance", guidance},
                         {"runs", nlohmann::json::array()}};
  const double flops_per_row = vqd::bench::TransformerFlopsPerRow(pipeline->transformer()->config());

  std::cout << Header("pipeline, in process", info.device.str()) << "\n"
            << absl::StrFormat("model %s (%.1f M transformer parameters, %.3f TFLOP per row and step), %s, %s, %d "
                               "steps, guidance %.1f, load %.2f s\n\n",
                               info.model_name, static_cast<double>(info.transformer_parameters) / 1e6,
                               flops_per_row / 1e12, vqd::DtypeName(info.dtype), PathLabel(info), steps, guidance,
                               info.load_seconds)
            << "| images | end to end s | images/s | s/step | transformer rows | forward ms | TFLOP/s | peak device GiB | peak RSS GiB |\n"
            << "|---|---|---|---|---|---|---|---|---|\n";
  for (int64_t images : image_counts) {
    vqd::pipeline::GenerateParams params;
    params.prompt = "a photo of a red car parked by the sea";
    params.num_images = images;
    params.steps = steps;
    params.guidance_scale = static_cast<float>(guidance);
    params.seed = 1;
    // Warm-up (allocator, kernels), then the measured run.
    params.steps = std::min<int64_t>(2, steps);
    VQD_RETURN_IF_ERROR(vqd::pipeline::Generate(*pipeline, params).status());
    params.steps = steps;
    vqd::ResetPeakDeviceMemory(info.device);
    Sync(info.device);
    const auto start = Clock::now();
    VQD_RETURN_IF_ERROR(vqd::pipeline::Generate(*pipeline, params).status());
    Sync(info.device);
    const double total = Seconds(Clock::now() - start);
    const std::optional<double> peak = PeakDeviceGiB(info.device);  // the generation's, before the timing below

    // The transformer alone at the batch this request runs (2 rows per image with guidance).
    const int64_t rows = vqd::pipeline::VqDiffusionPipeline::RowsFor(images, params.guidance_scale > 1);
    double forward_ms = 0;
    VQD_RETURN_IF_ERROR(vqd::CatchTorch("timing the transformer", [&] {
      torch::InferenceMode guard;
      const auto opts = torch::TensorOptions().dtype(torch::kInt64).device(info.device);
      torch::Tensor tokens = torch::randint(0, info.codebook_size + 1, {rows, info.num_latent_pixels}, opts);
      const TransformerPass pass(*pipeline, tokens, info.num_train_timesteps / 2);
      pass.Run();  // warm-up
      Sync(info.device);
      constexpr int kRepeats = 3;
      const auto t0 = Clock::now();
      for (int i = 0; i < kRepeats; ++i) pass.Run();
      Sync(info.device);
      forward_ms = Seconds(Clock::now() - t0) / kRepeats * 1000;
    }));
    const double tflops = flops_per_row * static_cast<double>(rows) / (forward_ms / 1000) / 1e12;
    std::cout << absl::StrFormat("| %d | %.2f | %.3f | %.3f | %d | %.1f | %.4g | %s | %.2f |\n", images, total,
                                 static_cast<double>(images) / total, total / static_cast<double>(steps), rows,
                                 forward_ms, tflops, peak ? absl::StrFormat("%.2f", *peak) : "n/a", PeakRssGiB())
              << std::flush;
    json["runs"].push_back({{"images", images},
                            {"seconds", total},
                            {"images_per_s", static_cast<double>(images) / total},
                            {"s_per_step", total / static_cast<double>(steps)},
                            {"rows", rows},
                            {"forward_ms", forward_ms},
                            {"tflops", tflops},
                            {"peak_device_gib", OptionalJson(peak)},
                            {"peak_rss_gib", PeakRssGiB()}});
    VQD_RETURN_IF_ERROR(WriteJson(args, json));  // after every row: partial results survive a timeout
  }
  std::cout << "\n";
  return ProfileStep(*pipeline, image_counts.back(), guidance);
}

// Where one denoising step's time goes, phase by phase, at `images` guided images: the
// transformer pass, then the scheduler's work on its output (the same functions DenoiseStep runs).
absl::Status ProfileStep(vqd::pipeline::VqDiffusionPipeline& pipeline, int64_t images, double guidance) {
  const auto& info = pipeline.info();
  const bool guided = guidance > 1;
  const int64_t rows = vqd::pipeline::VqDiffusionPipeline::RowsFor(images, guided);
  std::vector<std::pair<std::string, double>> phases;
  VQD_RETURN_IF_ERROR(vqd::CatchTorch("profiling a step", [&] {
    torch::InferenceMode guard;
    const auto long_opts = torch::TensorOptions().dtype(torch::kInt64).device(info.device);
    torch::Tensor tokens = torch::randint(0, info.codebook_size + 1, {rows, info.num_latent_pixels}, long_opts);
    torch::Tensor timesteps = torch::full({rows}, info.num_train_timesteps / 2, long_opts);
    const TransformerPass pass(pipeline, tokens, info.num_train_timesteps / 2);
    torch::Generator generator = vqd::diffusion::MakeGenerator(info.device, 0);
    auto timed = [&](const std::string& name, const std::function<torch::Tensor()>& fn) {
      fn();  // warm-up
      Sync(info.device);
      const auto start = Clock::now();
      torch::Tensor out = fn();
      Sync(info.device);
      phases.emplace_back(name, Seconds(Clock::now() - start) * 1000);
      return out;
    };
    torch::Tensor log_p = timed(info.fused ? "transformer forward (fast path, incl. fused log-softmax)"
                                           : "transformer forward (incl. float64 log-softmax)",
                                [&] { return pass.Run().clone(); });
    torch::Tensor x0 = log_p.narrow(0, rows - images, images);
    const auto float_opts = torch::TensorOptions().dtype(torch::kFloat32).device(info.device);
    if (guided) {
      x0 = timed("classifier-free guidance + renormalisation", [&] {
        return vqd::diffusion::ApplyGuidance(log_p.narrow(0, 0, images), log_p.narrow(0, images, images),
                                             torch::full({images}, static_cast<float>(guidance), float_opts));
      });
    }
    x0 = timed("truncation (sort, cumsum, scatter) + clamp", [&] {
      return vqd::diffusion::Truncate(x0, torch::full({images}, 0.86f, float_opts)).clamp_min(-70.0);
    });
    torch::Tensor x_t = tokens.narrow(0, 0, images);
    torch::Tensor t = timesteps.narrow(0, 0, images);
    torch::Tensor uniform = timed("uniform noise (torch.rand)", [&] {
      return vqd::diffusion::DrawUniform(generator, {images, info.codebook_size + 1, info.num_latent_pixels},
                                         info.device);
    });
    if (info.fused) {
      timed("posterior + Gumbel-max (fused)", [&] {
        return vqd::diffusion::SamplePosterior(pipeline.schedule(), x0, x_t, t, uniform, /*fused=*/true);
      });
    } else {
      torch::Tensor posterior =
          timed("q_posterior", [&] { return vqd::diffusion::QPosterior(pipeline.schedule(), x0, x_t, t); });
      timed("Gumbel-max sampling", [&] { return vqd::diffusion::GumbelArgmax(posterior, uniform); });
    }
  }));
  double total = 0;
  for (const auto& [name, ms] : phases) total += ms;
  std::cout << absl::StrFormat("Profile of one step at %d image(s) (%d transformer rows), %s:\n\n", images, rows,
                               info.device.str())
            << "| phase | ms | share |\n|---|---|---|\n";
  for (const auto& [name, ms] : phases) {
    std::cout << absl::StrFormat("| %s | %.2f | %.1f%% |\n", name, ms, 100 * ms / total);
  }
  std::cout << absl::StrFormat("| total | %.2f | |\n\n", total);
  return absl::OkStatus();
}

struct LoadResult {
  int64_t requests = 0, images = 0, failures = 0;
  double wall_seconds = 0;
  std::vector<double> latencies;        // call start -> Done
  std::vector<double> first_progress;   // Started -> first Progress, as the client sees it
  std::vector<double> first_progress_from_call;  // call start -> first Progress (queueing included)
  std::string first_error;
};

// `clients` threads each send `per_client` requests back to back.
LoadResult RunLoad(const std::string& target, int64_t clients, int64_t per_client, const v1::GenerateRequest& request) {
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), channel_args);
  auto stub = v1::VqDiffusion::NewStub(channel);
  LoadResult result;
  std::mutex mu;
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int64_t c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int64_t i = 0; i < per_client; ++i) {
        v1::GenerateRequest r = request;
        r.set_seed(static_cast<uint64_t>(c * 1000 + i));
        grpc::ClientContext context;
        const auto call_start = Clock::now();
        Clock::time_point started, first_progress;
        int64_t images = 0;
        auto reader = stub->Generate(&context, r);
        v1::GenerateEvent event;
        while (reader->Read(&event)) {
          if (event.has_started()) started = Clock::now();
          if (event.has_progress() && first_progress == Clock::time_point{}) first_progress = Clock::now();
          if (event.has_image()) ++images;
        }
        grpc::Status status = reader->Finish();
        const double latency = Seconds(Clock::now() - call_start);
        std::lock_guard<std::mutex> lock(mu);
        ++result.requests;
        if (!status.ok()) {
          ++result.failures;
          if (result.first_error.empty()) result.first_error = status.error_message();
          continue;
        }
        result.images += images;
        result.latencies.push_back(latency);
        if (started != Clock::time_point{} && first_progress != Clock::time_point{}) {
          result.first_progress.push_back(Seconds(first_progress - started));
        }
        if (first_progress != Clock::time_point{}) {
          result.first_progress_from_call.push_back(Seconds(first_progress - call_start));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  result.wall_seconds = Seconds(Clock::now() - start);
  return result;
}

absl::Status RunServerBench(const CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::vector<int64_t> client_counts, IntList(args, "clients", "1,8"));
  VQD_ASSIGN_OR_RETURN(int64_t per_client, args.Int("requests-per-client", 3));
  VQD_ASSIGN_OR_RETURN(int64_t steps, args.Int("steps", 20));
  VQD_ASSIGN_OR_RETURN(int64_t images, args.Int("images", 1));
  VQD_ASSIGN_OR_RETURN(double guidance, args.Double("guidance", 5.0));
  VQD_ASSIGN_OR_RETURN(int64_t max_batch, args.Int("max-batch", 64));
  v1::GenerateRequest request;
  request.set_prompt("a photo of a red car parked by the sea");
  request.set_steps(static_cast<uint32_t>(steps));
  request.set_num_images(static_cast<uint32_t>(images));
  request.set_guidance_scale(static_cast<float>(guidance));
  request.set_progress_interval(1);
  const int64_t rows = guidance > 1 ? 2 * images : images;

  // Configurations to compare: the server as configured, and optionally one without
  // cross-request batching (its batch holds exactly one request).
  struct Setup {
    std::string label;
    int64_t max_batch;
  };
  std::vector<Setup> setups = {{absl::StrCat("batched (max ", max_batch, " rows)"), max_batch}};
  if (args.Has("unbatched-baseline")) setups.push_back({absl::StrCat("one request per step (", rows, " rows)"), rows});

  VQD_ASSIGN_OR_RETURN(std::optional<bool> fused, FusedOption(args));
  std::string device_label = "external server";
  std::vector<std::string> lines;
  nlohmann::json json = {{"mode", "server"}, {"steps", steps}, {"images_per_request", images}, {"guidance", guidance},
                         {"requests_per_client", per_client}, {"runs", nlohmann::json::array()}};
  std::optional<torch::Device> local_device;
  for (const Setup& setup : setups) {
    std::unique_ptr<vqd::server::ServerApp> app;
    std::string target;
    if (auto server = args.Get("server")) {
      if (setups.size() > 1) return absl::InvalidArgumentError("--unbatched-baseline needs --model (an in-process server)");
      target = *server;
    } else {
      vqd::server::ServerConfig config;
      VQD_ASSIGN_OR_RETURN(config.model_dir, args.Required("model"));
      VQD_ASSIGN_OR_RETURN(torch::Device device, vqd::ParseDevice(args.Get("device").value_or("cpu")));
      config.devices = {device};
      VQD_ASSIGN_OR_RETURN(config.dtype, vqd::ParseDtype(args.Get("dtype").value_or(device.is_cuda() ? "fp16" : "fp32")));
      config.listen = "127.0.0.1:0";
      config.metrics_port = -1;
      config.max_batch_rows = setup.max_batch;
      config.max_queue = 4096;
      config.limits.max_images = std::max<int64_t>(images, 16);
      config.fused = fused;
      VQD_ASSIGN_OR_RETURN(app, vqd::server::ServerApp::Start(config));
      target = absl::StrCat("127.0.0.1:", app->grpc_port());
      const auto& info = app->engine().info();
      device_label = absl::StrCat(device.str(), " ", vqd::DtypeName(config.dtype), ", model ", info.model_name, ", ",
                                  PathLabel(info));
      json["info"] = InfoJson(info);
      local_device = device;
    }
    RunLoad(target, 1, 1, request);  // warm-up
    for (int64_t clients : client_counts) {
      if (local_device) vqd::ResetPeakDeviceMemory(*local_device);
      LoadResult r = RunLoad(target, clients, per_client, request);
      if (r.failures > 0) {
        return absl::InternalError(absl::StrCat(r.failures, " of ", r.requests, " requests failed: ", r.first_error));
      }
      std::optional<double> peak;
      if (local_device) peak = PeakDeviceGiB(*local_device);
      lines.push_back(absl::StrFormat("| %s | %d | %d | %.3f | %.2f | %.2f | %.1f | %.1f | %s |", setup.label, clients,
                                      r.requests, static_cast<double>(r.images) / r.wall_seconds,
                                      Percentile(r.latencies, 50), Percentile(r.latencies, 99),
                                      Percentile(r.first_progress, 50) * 1000, Percentile(r.first_progress, 99) * 1000,
                                      peak ? absl::StrFormat("%.2f", *peak) : "n/a"));
      std::cerr << lines.back() << "\n";
      json["runs"].push_back({{"server", setup.label},
                              {"batched", setup.max_batch == max_batch},
                              {"clients", clients},
                              {"requests", r.requests},
                              {"images", r.images},
                              {"wall_seconds", r.wall_seconds},
                              {"images_per_s", static_cast<double>(r.images) / r.wall_seconds},
                              {"latency_p50_s", Percentile(r.latencies, 50)},
                              {"latency_p99_s", Percentile(r.latencies, 99)},
                              {"first_progress_p50_ms", Percentile(r.first_progress, 50) * 1000},
                              {"first_progress_p99_ms", Percentile(r.first_progress, 99) * 1000},
                              {"first_progress_from_call_p50_ms", Percentile(r.first_progress_from_call, 50) * 1000},
                              {"first_progress_from_call_p99_ms", Percentile(r.first_progress_from_call, 99) * 1000},
                              {"peak_device_gib", OptionalJson(peak)}});
      VQD_RETURN_IF_ERROR(WriteJson(args, json));
    }
    if (app) app->Drain(absl::Seconds(5));
  }
  std::cout << Header("server over gRPC on loopback", device_label) << "\n"
            << absl::StrFormat("%d steps, %d image(s) per request, guidance %.1f (%d rows per request), %d requests per client\n\n",
                               steps, images, guidance, rows, per_client)
            << "| server | clients | requests | images/s | latency p50 s | latency p99 s | first progress p50 ms | first progress p99 ms | peak device GiB |\n"
            << "|---|---|---|---|---|---|---|---|---|\n"
            << absl::StrJoin(lines, "\n") << "\n\n";
  return absl::OkStatus();
}

absl::Status RunAgreementBench(const CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::string model_dir, args.Required("model"));
  VQD_ASSIGN_OR_RETURN(torch::Device device, vqd::ParseDevice(args.Get("device").value_or("cpu")));
  VQD_ASSIGN_OR_RETURN(torch::Dtype half, vqd::ParseDtype(args.Get("dtype").value_or("fp16")));
  VQD_ASSIGN_OR_RETURN(int64_t seeds, args.Int("seeds", 4));
  VQD_ASSIGN_OR_RETURN(int64_t steps, args.Int("steps", 100));
  VQD_ASSIGN_OR_RETURN(double guidance, args.Double("guidance", 5.0));
  VQD_ASSIGN_OR_RETURN(double min_agreement, FractionFlag(args, "min-agreement", 0.9));
  const std::vector<std::string> prompts = {"teddy bear playing in the pool", "a red car parked by the sea",
                                            "a bowl of fruit on a wooden table", "a long exposure photo of waterfall"};
  auto final_grids = [&](torch::Dtype dtype) -> absl::StatusOr<std::vector<torch::Tensor>> {
    vqd::pipeline::PipelineOptions options;
    options.device = device;
    options.dtype = dtype;
    options.variant = "";  // both from the same full-precision weights
    VQD_ASSIGN_OR_RETURN(auto pipeline, vqd::pipeline::VqDiffusionPipeline::Load(model_dir, options));
    std::vector<torch::Tensor> grids;
    for (int64_t s = 0; s < seeds; ++s) {
      vqd::pipeline::GenerateParams params;
      params.prompt = prompts[static_cast<size_t>(s) % prompts.size()];
      params.steps = steps;
      params.guidance_scale = static_cast<float>(guidance);
      params.seed = static_cast<uint64_t>(s);
      VQD_ASSIGN_OR_RETURN(auto result, vqd::pipeline::Generate(*pipeline, params));
      grids.push_back(result.tokens);
    }
    return grids;
  };
  VQD_ASSIGN_OR_RETURN(auto reference, final_grids(torch::kFloat32));
  VQD_ASSIGN_OR_RETURN(auto reduced, final_grids(half));
  std::cout << Header("half-precision agreement", device.str()) << "\n"
            << absl::StrFormat("model %s, %d steps, guidance %.1f, %s against fp32, same weights and seeds\n\n",
                               model_dir, steps, guidance, vqd::DtypeName(half))
            << "| seed | prompt | tokens equal |\n|---|---|---|\n";
  int64_t equal = 0, total = 0;
  for (int64_t s = 0; s < seeds; ++s) {
    const int64_t e = reference[s].eq(reduced[s]).sum().item<int64_t>();
    equal += e;
    total += reference[s].numel();
    std::cout << absl::StrFormat("| %d | %s | %.2f%% |\n", s, prompts[static_cast<size_t>(s) % prompts.size()],
                                 100.0 * static_cast<double>(e) / static_cast<double>(reference[s].numel()));
  }
  const double share = static_cast<double>(equal) / static_cast<double>(total);
  std::cout << absl::StrFormat("| all | | **%.2f%%** of %d tokens |\n\n", 100.0 * share, total);
  const bool passed = share >= min_agreement;
  VQD_RETURN_IF_ERROR(WriteJson(args, {{"mode", "agreement"}, {"device", device.str()}, {"dtype", vqd::DtypeName(half)},
                                       {"steps", steps}, {"seeds", seeds}, {"tokens_equal", share},
                                       {"min_agreement", min_agreement}, {"passed", passed}}));
  if (!passed) {
    return ThresholdFailed({absl::StrFormat("%s tokens equal to fp32's: %.4f, below --min-agreement %.4f",
                                            vqd::DtypeName(half), share, min_agreement)});
  }
  std::cout << absl::StrFormat("PASSED: %.4f of tokens equal, at least --min-agreement %.4f\n", share, min_agreement);
  return absl::OkStatus();
}

// Teacher-forced per-step divergence from float32: a float32 run (reference path) sets the input
// tokens of every step; at every `every`-th step each half-precision pipeline (plain: reference
// path in that dtype; fast: the fast path) gets the same tokens and timestep, and the guided,
// truncated log p(x_0) of each is compared with float32's: KL(fp32 || it) averaged over positions,
// and the share of positions whose most likely class agrees.
absl::Status RunFidelityBench(const CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::string model_dir, args.Required("model"));
  VQD_ASSIGN_OR_RETURN(torch::Device device, vqd::ParseDevice(args.Get("device").value_or("cpu")));
  std::vector<torch::Dtype> dtypes;
  for (absl::string_view name : absl::StrSplit(args.Get("dtypes").value_or("fp16,bf16"), ',', absl::SkipEmpty())) {
    VQD_ASSIGN_OR_RETURN(torch::Dtype dtype, vqd::ParseDtype(name));
    if (dtype == torch::kFloat32) return absl::InvalidArgumentError("--dtypes lists half precisions (fp16, bf16)");
    dtypes.push_back(dtype);
  }
  VQD_ASSIGN_OR_RETURN(int64_t seeds, args.Int("seeds", 1));
  VQD_ASSIGN_OR_RETURN(int64_t steps, args.Int("steps", 100));
  VQD_ASSIGN_OR_RETURN(int64_t every, args.Int("every", 5));
  VQD_ASSIGN_OR_RETURN(double guidance, args.Double("guidance", 5.0));
  VQD_ASSIGN_OR_RETURN(double max_kl, args.Double("max-kl", std::numeric_limits<double>::infinity()));
  VQD_ASSIGN_OR_RETURN(double min_agreement, FractionFlag(args, "min-agreement", 0.0));
  VQD_ASSIGN_OR_RETURN(double max_ratio, args.Double("max-ratio", 2.0));
  if (every < 1) return absl::InvalidArgumentError("--every must be at least 1");
  if (!(max_kl >= 0)) return absl::InvalidArgumentError("--max-kl must be at least 0");
  if (!(max_ratio >= 0)) return absl::InvalidArgumentError("--max-ratio must be at least 0 (0: no limit)");
  const std::vector<std::string> prompts = {"teddy bear playing in the pool", "a red car parked by the sea",
                                            "a bowl of fruit on a wooden table", "a long exposure photo of waterfall"};
  auto load = [&](torch::Dtype dtype, bool fused) {
    vqd::pipeline::PipelineOptions options;
    options.device = device;
    options.dtype = dtype;
    options.variant = "";  // all from the same weights
    options.fused = fused;
    options.graph_max_rows = fused ? vqd::pipeline::VqDiffusionPipeline::RowsFor(1, guidance > 1) : 0;
    return vqd::pipeline::VqDiffusionPipeline::Load(model_dir, options);
  };
  struct Candidate {
    std::string name;  // "fp16 plain", "fp16 fast"
    std::string dtype, path;
    std::unique_ptr<vqd::pipeline::VqDiffusionPipeline> pipeline;
    std::vector<double> kl, agreement;  // per compared step
  };
  VQD_ASSIGN_OR_RETURN(auto reference, load(torch::kFloat32, false));
  std::vector<Candidate> candidates;
  for (torch::Dtype dtype : dtypes) {
    for (bool fused : {false, true}) {
      Candidate c;
      c.dtype = vqd::DtypeName(dtype);
      c.path = fused ? "fast" : "plain";
      c.name = absl::StrCat(c.dtype, " ", c.path);
      VQD_ASSIGN_OR_RETURN(c.pipeline, load(dtype, fused));
      candidates.push_back(std::move(c));
    }
  }
  for (int64_t s = 0; s < seeds; ++s) {
    const std::string prompt = prompts[static_cast<size_t>(s) % prompts.size()];
    VQD_ASSIGN_OR_RETURN(auto ref_prompt, reference->EncodePrompt(prompt));
    std::vector<std::shared_ptr<const vqd::pipeline::PromptEncoding>> cand_prompts;
    for (auto& c : candidates) {
      VQD_ASSIGN_OR_RETURN(auto encoded, c.pipeline->EncodePrompt(prompt));
      cand_prompts.push_back(encoded);
    }
    torch::Generator ref_gen = vqd::diffusion::MakeGenerator(device, static_cast<uint64_t>(s));
    vqd::pipeline::SampleGroup ref;
    ref.prompt = ref_prompt;
    ref.tokens = reference->MaskedTokens(1);
    ref.guidance_scale = static_cast<float>(guidance);
    ref.generator = &ref_gen;
    for (int64_t i = 0; i < steps; ++i) {
      ref.timestep = vqd::pipeline::TimestepAt(steps, i);
      const bool compare = i % every == 0 || i == steps - 1;
      torch::Tensor ref_x0;
      std::vector<torch::Tensor> cand_x0(candidates.size());
      if (compare) {
        for (size_t k = 0; k < candidates.size(); ++k) {
          torch::Generator gen = vqd::diffusion::MakeGenerator(device, 0);  // the draw is not compared
          vqd::pipeline::SampleGroup g = ref;
          g.prompt = cand_prompts[k];
          g.tokens = ref.tokens.clone();
          g.generator = &gen;
          g.log_p_x_0_out = &cand_x0[k];
          std::vector<vqd::pipeline::SampleGroup*> batch = {&g};
          VQD_RETURN_IF_ERROR(candidates[k].pipeline->DenoiseStep(batch));
        }
        ref.log_p_x_0_out = &ref_x0;
      } else {
        ref.log_p_x_0_out = nullptr;
      }
      std::vector<vqd::pipeline::SampleGroup*> batch = {&ref};
      VQD_RETURN_IF_ERROR(reference->DenoiseStep(batch));
      if (!compare) continue;
      VQD_RETURN_IF_ERROR(vqd::CatchTorch("comparing log-probabilities", [&] {
        torch::InferenceMode guard;
        const torch::Tensor p = torch::log_softmax(ref_x0.to(torch::kFloat64), 1);  // [1, K, N]
        const torch::Tensor ref_top = p.argmax(1);
        for (size_t k = 0; k < candidates.size(); ++k) {
          const torch::Tensor q = torch::log_softmax(cand_x0[k].to(torch::kFloat64), 1);
          const double kl = (p.exp() * (p - q)).sum(1).mean().item<double>();
          const double agree = ref_top.eq(q.argmax(1)).to(torch::kFloat64).mean().item<double>();
          candidates[k].kl.push_back(kl);
          candidates[k].agreement.push_back(agree);
        }
      }));
    }
  }
  auto mean = [](const std::vector<double>& v) {
    return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  };
  std::cout << Header("teacher-forced fidelity against float32", device.str()) << "\n"
            << absl::StrFormat("model %s, %d seed(s), %d steps, compared every %d steps and at the last, guidance "
                               "%.1f; KL(fp32 || path) of log p(x_0), mean over positions\n\n",
                               model_dir, seeds, steps, every, guidance)
            << "| path | KL mean | KL max | argmax agreement | KL / plain fp16's | disagreement / plain fp16's |\n"
            << "|---|---|---|---|---|---|\n";
  const Candidate* plain_fp16 = nullptr;
  for (const Candidate& c : candidates) {
    if (c.dtype == "fp16" && c.path == "plain") plain_fp16 = &c;
  }
  nlohmann::json json = {{"mode", "fidelity"}, {"device", device.str()}, {"steps", steps}, {"every", every},
                         {"seeds", seeds},     {"guidance", guidance},   {"paths", nlohmann::json::object()}};
  for (const Candidate& c : candidates) {
    const double kl = mean(c.kl), agree = mean(c.agreement);
    const double kl_max = c.kl.empty() ? 0.0 : *std::max_element(c.kl.begin(), c.kl.end());
    nlohmann::json entry = {{"dtype", c.dtype}, {"path", c.path}, {"kl_mean", kl}, {"kl_max", kl_max},
                            {"argmax_agreement", agree}, {"compared_steps", c.kl.size()}};
    std::string kl_ratio = "n/a", dis_ratio = "n/a";
    if (plain_fp16 != nullptr) {
      const double base_kl = mean(plain_fp16->kl), base_dis = 1.0 - mean(plain_fp16->agreement);
      if (base_kl > 0) {
        entry["kl_over_plain_fp16"] = kl / base_kl;
        kl_ratio = absl::StrFormat("%.2f", kl / base_kl);
      }
      if (base_dis > 0) {
        entry["disagreement_over_plain_fp16"] = (1.0 - agree) / base_dis;
        dis_ratio = absl::StrFormat("%.2f", (1.0 - agree) / base_dis);
      }
      // The goal: no worse than twice plain fp16's divergence (on both measures).
      entry["within_2x_plain_fp16"] = kl <= 2 * base_kl && (1.0 - agree) <= 2 * base_dis;
    }
    json["paths"][c.name] = entry;
    std::cout << absl::StrFormat("| %s | %.3g | %.3g | %.4f%% | %s | %s |\n", c.name, kl, kl_max, 100 * agree,
                                 kl_ratio, dis_ratio);
  }
  std::cout << "\n";
  // The thresholds, after the JSON so that a failed run still leaves its numbers.
  std::vector<std::string> failures;
  for (const Candidate& c : candidates) {
    const double kl = mean(c.kl), agree = mean(c.agreement);
    if (kl > max_kl) failures.push_back(absl::StrFormat("%s mean KL %.4g above --max-kl %.4g", c.name, kl, max_kl));
    if (agree < min_agreement) {
      failures.push_back(absl::StrFormat("%s argmax agreement %.4f below --min-agreement %.4f", c.name, agree, min_agreement));
    }
    if (max_ratio == 0 || c.path != "fast") continue;
    for (const Candidate& plain : candidates) {
      if (plain.dtype != c.dtype || plain.path != "plain") continue;
      const double plain_kl = mean(plain.kl), plain_dis = 1.0 - mean(plain.agreement);
      if (kl > max_ratio * plain_kl) {
        failures.push_back(absl::StrFormat("%s mean KL %.4g is more than --max-ratio %g times %s's %.4g", c.name, kl,
                                           max_ratio, plain.name, plain_kl));
      }
      if (1.0 - agree > max_ratio * plain_dis) {
        failures.push_back(absl::StrFormat("%s argmax disagreement %.4g is more than --max-ratio %g times %s's %.4g",
                                           c.name, 1.0 - agree, max_ratio, plain.name, plain_dis));
      }
    }
  }
  json["thresholds"] = {{"max_kl", std::isinf(max_kl) ? nlohmann::json() : nlohmann::json(max_kl)},
                        {"min_agreement", min_agreement}, {"max_ratio", max_ratio}};
  json["passed"] = failures.empty();
  VQD_RETURN_IF_ERROR(WriteJson(args, json));
  if (!failures.empty()) return ThresholdFailed(failures);
  std::cout << "PASSED: every path within the thresholds\n";
  return absl::OkStatus();
}

constexpr char kUsage[] = R"(usage:
  vqd-bench pipeline --model DIR [--device cpu|cuda:N] [--dtype fp32|fp16|bf16] [--images 1,8,32]
                     [--steps N] [--guidance G]
  vqd-bench server (--model DIR [--device D] [--dtype T] [--max-batch R] [--unbatched-baseline] | --server HOST:PORT)
                   [--clients 1,8,64] [--requests-per-client K] [--steps N] [--images K] [--guidance G]
  vqd-bench agreement --model DIR [--device D] [--dtype fp16|bf16] [--seeds K] [--steps N] [--guidance G]
                      [--min-agreement F]   (default 0.9)
  vqd-bench fidelity --model DIR [--device D] [--dtypes fp16,bf16] [--seeds K] [--steps N] [--every E]
                     [--guidance G] [--max-kl X] [--min-agreement F] [--max-ratio R]   (defaults: none, 0, 2)
every mode: [--json FILE]; pipeline and server: [--fused auto|on|off]; pipeline: [--graph-rows R]
exit status: 0 ok, 1 error, 2 usage, 3 a threshold was not met
)";

}  // namespace

int main(int argc, char** argv) {
  vqd::ConfigureCpuThreads();
  spdlog::set_level(spdlog::level::warn);
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string mode = argv[1];
  const std::vector<std::string> rest(argv + 2, argv + argc);
  std::set<std::string> valued, switches;
  if (mode == "pipeline") {
    valued = {"model", "device", "dtype", "images", "steps", "guidance", "fused", "graph-rows", "json"};
  } else if (mode == "server") {
    valued = {"model", "server", "device", "dtype", "max-batch", "clients", "requests-per-client", "steps", "images",
              "guidance", "fused", "json"};
    switches = {"unbatched-baseline"};
  } else if (mode == "agreement") {
    valued = {"model", "device", "dtype", "seeds", "steps", "guidance", "min-agreement", "json"};
  } else if (mode == "fidelity") {
    valued = {"model", "device", "dtypes", "seeds", "steps", "every", "guidance", "max-kl", "min-agreement", "max-ratio",
              "json"};
  } else {
    std::cerr << kUsage;
    return 2;
  }
  absl::StatusOr<CliArgs> args = CliArgs::Parse(rest, valued, switches);
  if (!args.ok()) {
    std::cerr << "vqd-bench: " << args.status().message() << "\n" << kUsage;
    return 2;
  }
  std::cout << "command: " << absl::StrJoin(std::vector<std::string>(argv, argv + argc), " ") << "\n\n";
  absl::Status status = mode == "pipeline"    ? RunPipelineBench(*args)
                        : mode == "server"   ? RunServerBench(*args)
                        : mode == "fidelity" ? RunFidelityBench(*args)
                                             : RunAgreementBench(*args);
  if (!status.ok()) {
    std::cerr << "vqd-bench: " << status.message() << "\n";
    return status.code() == absl::StatusCode::kOutOfRange ? 3 : 1;
  }
  return 0;
}
