// vqd-load-bench: what loading a model costs in host memory. A pod's memory limit must cover the
// peak of loading, so the peak should stay close to what the server keeps once loaded.
//
//   vqd-load-bench --model DIR [--device cpu|cuda:N] [--dtype fp32|fp16|bf16] [--json FILE]
//
// Loads the model once in this fresh process and prints the load time, the resident memory before
// loading (libtorch and the binary), the peak during loading (VmHWM) and the steady state after it
// (VmRSS), and peak / steady. It depends on the pipeline alone (not on the server), so that it
// builds wherever the loading code does.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "base/process_memory.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/cli_args.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace {


double GiB(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

absl::Status Run(const vqd::CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::string model_dir, args.Required("model"));
  vqd::pipeline::PipelineOptions options;
  VQD_ASSIGN_OR_RETURN(options.device, vqd::ParseDevice(args.Get("device").value_or("cpu")));
  VQD_ASSIGN_OR_RETURN(options.dtype, vqd::ParseDtype(args.Get("dtype").value_or("fp32")));

  const int64_t before = vqd::ProcessStatusBytes("VmRSS");
  const auto start = std::chrono::steady_clock::now();
  VQD_ASSIGN_OR_RETURN(auto pipeline, vqd::pipeline::VqDiffusionPipeline::Load(model_dir, options));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t peak = vqd::ProcessStatusBytes("VmHWM");
  const int64_t steady = vqd::ProcessStatusBytes("VmRSS");

  const auto& info = pipeline->info();
  const int64_t parameters = info.transformer_parameters + info.vqvae_parameters + info.text_encoder_parameters;
  const double weight_bytes = static_cast<double>(parameters) * c10::elementSize(options.dtype);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M", std::localtime(&now));
  std::cout << absl::StrFormat("### loading, host memory (%s, %s %s, %s, libtorch %s, %u CPU threads)\n\n",
                               model_dir, options.device.str(), vqd::DtypeName(options.dtype), date, TORCH_VERSION,
                               std::thread::hardware_concurrency())
            << "| parameters | weights GiB | load s | RSS before GiB | peak RSS GiB | steady RSS GiB | peak / steady | "
               "peak - steady GiB |\n"
            << "|---|---|---|---|---|---|---|---|\n"
            << absl::StrFormat("| %.1f M | %.2f | %.2f | %.2f | %.2f | %.2f | %.3f | %.2f |\n\n",
                               static_cast<double>(parameters) / 1e6, weight_bytes / (1024.0 * 1024.0 * 1024.0),
                               seconds, GiB(before), GiB(peak), GiB(steady),
                               static_cast<double>(peak) / static_cast<double>(steady), GiB(peak - steady));
  if (const auto path = args.Get("json")) {
    const nlohmann::json json = {{"mode", "load"},           {"model", model_dir},
                                 {"device", options.device.str()}, {"dtype", vqd::DtypeName(options.dtype)},
                                 {"parameters", parameters}, {"load_seconds", seconds},
                                 {"rss_before_bytes", before}, {"peak_rss_bytes", peak},
                                 {"steady_rss_bytes", steady}};
    std::ofstream out(*path);
    out << json.dump(2) << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", *path));
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  vqd::ConfigureCpuThreads();
  spdlog::set_level(spdlog::level::warn);
  const std::vector<std::string> rest(argv + 1, argv + argc);
  absl::StatusOr<vqd::CliArgs> args = vqd::CliArgs::Parse(rest, {"model", "device", "dtype", "json"});
  if (!args.ok()) {
    std::cerr << "vqd-load-bench: " << args.status().message()
              << "\nusage: vqd-load-bench --model DIR [--device cpu|cuda:N] [--dtype fp32|fp16|bf16] [--json FILE]\n";
    return 2;
  }
  std::cout << "command: " << absl::StrJoin(std::vector<std::string>(argv, argv + argc), " ") << "\n\n";
  if (absl::Status status = Run(*args); !status.ok()) {
    std::cerr << "vqd-load-bench: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
