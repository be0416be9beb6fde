// vqd: the offline command-line tool. Generates images from a model directory, tokenizes prompts,
// creates random models in the diffusers layout, converts the official microsoft/VQ-Diffusion
// checkpoints, and describes a model directory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "base/cli_args.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "convert/official_converter.h"
#include "demo_model/demo_model.h"
#include "io/file_util.h"
#include "io/json_config.h"
#include "io/png.h"
#include "io/safetensors.h"
#include "io/weights_file.h"
#include "pipeline/generate.h"
#include "pipeline/model_directory.h"
#include "pipeline/model_factory.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace fs = std::filesystem;
using vqd::CliArgs;

namespace {

constexpr char kUsage[] = R"(usage: vqd <command> [options]

commands:
  generate --model DIR (--prompt TEXT | --class-label N) --out PREFIX [--steps N | --time-stride S]
           [--guidance G]
           [--truncation R] [--num-images K] [--seed S] [--device cpu|cuda|cuda:N]
           [--prior-rule uniform|purity [--prior-weight R]] [--init-image PNG [--strength X] [--mask PNG]]
           [--preview-every K]
           [--dtype fp32|fp16|bf16] [--variant fp16|full] [--save-tokens FILE] [--save-trace FILE]
           [--quiet]
      Generates K images and writes PREFIX-0.png ... (100 steps, one image, seed 0; guidance and
      truncation: the model's defaults, which are diffusers' 5.0 and 1.0 unless the model was
      converted from an official checkpoint). Class-conditional models take --class-label instead
      of a prompt. --time-stride S > 1 samples with the official strided sampler: timesteps T-1,
      T-1-S, ... and 0 of the whole schedule (26 steps for S = 4 on a 100-step schedule).
      --prior-rule unmasks exactly the scheduled number of tokens per step (Improved VQ-Diffusion),
      at uniform positions or weighted by purity (--prior-weight R sharpens confident ones).
      --init-image edits a PNG of the model's image size: encoded, noised to timestep
      int(T * X) - 1 (--strength X in (0, 1], default 1) and denoised from there; --mask (white:
      regenerate, black: keep) holds the tokens outside the white area to the image's (inpainting).
      --preview-every K writes PREFIX-stepNN-<index>.png every K steps: the model's current
      prediction of the images, decoded small.
      --save-tokens writes the final token grids as {"tokens": [[...], ...]} (one
      row-major list per image). --save-trace writes a safetensors file with "grids" (int64
      [steps, K, tokens]: every step's token grids) and "images" (float32 [K, H, W, 3] in [0, 1],
      before rounding to 8 bits), the tensors a reference run compares (tests/reference).
  convert-official --checkpoint CKPT.pth --config CONFIG.yaml [--bpe MERGES] --out DIR
           [--vqgan-config YAML] [--shrink-table PT] [--no-ema] [--zero-shot-null] [--guidance G]
           [--truncation R]
      Converts an official microsoft/VQ-Diffusion checkpoint (coco_*, cub_*, CC_*, cc_*, human_*,
      imagenet_*) into a model directory the server loads. --bpe (text models) takes the official
      bpe_simple_vocab_16e6.txt.gz or a CLIP merges.txt. The VQGAN config and shrink table the
      config names are looked up next to it unless given. --no-ema converts the training weights
      instead of the EMA ones official inference uses; --zero-shot-null guides with the empty
      prompt even when the checkpoint learned a null embedding (official learnable_cf=False);
      --guidance/--truncation override the sampling defaults recorded for the checkpoint.
  tokenize --model DIR (TEXT | --lines FILE)
      Prints the ids the text encoder sees for TEXT as a JSON list. With --lines, FILE holds one
      JSON string per line and the output one JSON list per line, in the same order.
  make-model --preset demo|tiny|small|ithq --out DIR [--seed S] [--dtype fp32|fp16]
      Writes a model directory in the diffusers layout. demo: the trained demo model the server
      serves when given none (32x32 pictures of one shape, "a small red circle at the top left
      on a white background"; fp16 weights, as built in). The others have random weights: tiny
      (tests, 32x32 images), small (CPU benchmarks, 64x64) or ithq (the real ITHQ shapes, GPU
      benchmarks).
  inspect DIR
      Checks the model directory as the server's loader does (configs, every weights variant
      present, tensor names and shapes; exits 1 naming the file and field when it is broken), then
      lists its components: configs, weights files, parameter counts, dtypes.
)";

int UsageError(const std::string& message) {
  std::fprintf(stderr, "vqd: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "vqd: error: %s\n", std::string(status.message()).c_str());
  return 1;
}

absl::Status RunGenerate(const CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::string model_dir, args.Required("model"));
  VQD_ASSIGN_OR_RETURN(std::string out_prefix, args.Required("out"));
  if (args.Has("prompt") == args.Has("class-label")) {
    return absl::InvalidArgumentError("generate takes --prompt (text models) or --class-label (class models)");
  }
  vqd::pipeline::GenerateParams params;
  params.prompt = args.Get("prompt").value_or("");
  if (args.Has("class-label")) {
    VQD_ASSIGN_OR_RETURN(int64_t label, args.Int("class-label", 0));
    params.class_label = label;
  }
  std::optional<int64_t> steps;
  if (args.Has("steps")) {
    VQD_ASSIGN_OR_RETURN(steps, args.Int("steps", 100));
  }
  VQD_ASSIGN_OR_RETURN(params.time_stride, args.Int("time-stride", 1));
  VQD_ASSIGN_OR_RETURN(params.preview_interval, args.Int("preview-every", 0));
  const std::string prior_rule = args.Get("prior-rule").value_or("none");
  if (prior_rule == "uniform") {
    params.prior_rule = vqd::diffusion::PriorRule::kUniform;
  } else if (prior_rule == "purity") {
    params.prior_rule = vqd::diffusion::PriorRule::kPurity;
  } else if (prior_rule != "none") {
    return absl::InvalidArgumentError(absl::StrCat("--prior-rule must be none, uniform or purity, got ", prior_rule));
  }
  VQD_ASSIGN_OR_RETURN(double prior_weight, args.Double("prior-weight", 0.0));
  params.prior_weight = static_cast<float>(prior_weight);
  VQD_ASSIGN_OR_RETURN(params.num_images, args.Int("num-images", 1));
  VQD_ASSIGN_OR_RETURN(params.seed, args.Uint("seed", 0));
  if (params.num_images < 1 || params.num_images > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("--num-images must be in [1, 1024], got ", params.num_images));
  }

  vqd::pipeline::PipelineOptions options;
  VQD_ASSIGN_OR_RETURN(options.device, vqd::ParseDevice(args.Get("device").value_or("cpu")));
  VQD_ASSIGN_OR_RETURN(options.dtype, vqd::ParseDtype(args.Get("dtype").value_or("fp32")));
  if (auto variant = args.Get("variant")) {
    if (*variant != "fp16" && *variant != "full") return absl::InvalidArgumentError("--variant must be fp16 or full");
    options.variant = *variant == "fp16" ? "fp16" : "";
  }
  VQD_ASSIGN_OR_RETURN(auto pipeline, vqd::pipeline::VqDiffusionPipeline::Load(model_dir, options));
  const auto& info = pipeline->info();
  VQD_ASSIGN_OR_RETURN(double guidance, args.Double("guidance", info.default_guidance_scale));
  VQD_ASSIGN_OR_RETURN(double truncation, args.Double("truncation", info.default_truncation_rate));
  params.guidance_scale = static_cast<float>(guidance);
  params.truncation_rate = static_cast<float>(truncation);
  int64_t chain = 0;
  if (auto init_image = args.Get("init-image")) {
    auto edit = std::make_shared<vqd::pipeline::EditInput>();
    VQD_ASSIGN_OR_RETURN(double strength, args.Double("strength", 1.0));
    edit->strength = static_cast<float>(strength);
    VQD_ASSIGN_OR_RETURN(chain, vqd::pipeline::EditChainLength(edit->strength, info));
    VQD_ASSIGN_OR_RETURN(std::string png, vqd::io::ReadFile(*init_image, uint64_t{64} << 20));
    VQD_ASSIGN_OR_RETURN(edit->image, vqd::pipeline::EditImageFromPng(png, info, "--init-image " + *init_image));
    if (auto mask = args.Get("mask")) {
      VQD_ASSIGN_OR_RETURN(std::string mask_png, vqd::io::ReadFile(*mask, uint64_t{64} << 20));
      VQD_ASSIGN_OR_RETURN(edit->regenerate, vqd::pipeline::RegenerateMaskFromPng(mask_png, info, "--mask " + *mask));
    }
    params.edit = std::move(edit);
  } else if (args.Has("mask") || args.Has("strength")) {
    return absl::InvalidArgumentError("--mask and --strength need --init-image");
  }
  VQD_ASSIGN_OR_RETURN(params.steps, vqd::pipeline::StepsForStride(steps, params.time_stride, info, chain));
  VQD_RETURN_IF_ERROR(vqd::pipeline::ValidateGenerateParams(params, info));
  const bool quiet = args.Has("quiet");
  if (!quiet) {
    std::fprintf(stderr, "loaded %s on %s (%s) in %.2f s\n", info.model_name.c_str(), info.device.str().c_str(),
                 vqd::DtypeName(info.dtype).c_str(), info.load_seconds);
  }
  auto observer = [&](int64_t step, int64_t t, const torch::Tensor&) {
    if (!quiet) std::fprintf(stderr, "\rstep %lld/%lld (t=%lld)", static_cast<long long>(step + 1),
                             static_cast<long long>(params.steps), static_cast<long long>(t));
  };
  const auto trace_path = args.Get("save-trace");
  const auto started = std::chrono::steady_clock::now();
  absl::Status preview_error;
  auto preview_observer = [&](int64_t step, int64_t, const vqd::pipeline::PreviewImages& previews) {
    for (size_t i = 0; i < previews.pngs.size() && preview_error.ok(); ++i) {
      const std::string path = absl::StrFormat("%s-step%02d-%d.png", out_prefix, step, i);
      preview_error = vqd::io::WriteFile(path, previews.pngs[i]);
    }
  };
  VQD_ASSIGN_OR_RETURN(vqd::pipeline::GenerateResult result,
                       vqd::pipeline::Generate(*pipeline, params, observer, /*keep_step_tokens=*/trace_path.has_value(),
                                               preview_observer));
  VQD_RETURN_IF_ERROR(preview_error);
  if (!quiet) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "\ngenerated %lld images in %.3f s (%lld steps, prompt encoding and decoding included)\n",
                 static_cast<long long>(params.num_images), seconds, static_cast<long long>(params.steps));
  }

  torch::Tensor pixels = vqd::pipeline::ImagesToUint8(result.images, info.dtype).contiguous();
  for (int64_t i = 0; i < pixels.size(0); ++i) {
    torch::Tensor image = pixels[i].contiguous();
    VQD_ASSIGN_OR_RETURN(std::string png, vqd::io::EncodePng(image.data_ptr<uint8_t>(), static_cast<int>(image.size(1)),
                                                             static_cast<int>(image.size(0)), 3));
    const std::string path = absl::StrCat(out_prefix, "-", i, ".png");
    VQD_RETURN_IF_ERROR(vqd::io::WriteFile(path, png));
    if (!quiet) std::fprintf(stderr, "wrote %s\n", path.c_str());
  }
  if (auto tokens_path = args.Get("save-tokens")) {
    nlohmann::json grids = nlohmann::json::array();
    for (int64_t i = 0; i < result.tokens.size(0); ++i) {
      torch::Tensor row = result.tokens[i].contiguous();
      grids.push_back(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
    }
    VQD_RETURN_IF_ERROR(vqd::io::WriteFile(*tokens_path, nlohmann::json{{"tokens", grids}}.dump() + "\n"));
    if (!quiet) std::fprintf(stderr, "wrote %s\n", tokens_path->c_str());
  }
  if (trace_path) {
    vqd::io::TensorMap trace;
    trace["grids"] = torch::stack(result.step_tokens).to(torch::kInt64);
    trace["images"] = result.images.to(torch::kFloat32);
    VQD_RETURN_IF_ERROR(vqd::io::WriteSafetensors(*trace_path, trace));
    if (!quiet) std::fprintf(stderr, "wrote %s\n", trace_path->c_str());
  }
  return absl::OkStatus();
}

absl::Status RunTokenize(const CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::string model_dir, args.Required("model"));
  const auto lines_path = args.Get("lines");
  if (args.positional().size() != (lines_path ? 0u : 1u)) {
    return absl::InvalidArgumentError("tokenize takes exactly one TEXT argument, or --lines FILE and none");
  }
  VQD_ASSIGN_OR_RETURN(vqd::pipeline::ModelDirectory dir, vqd::pipeline::ModelDirectory::Open(model_dir));
  VQD_ASSIGN_OR_RETURN(vqd::text::ClipTokenizer tokenizer,
                       vqd::text::ClipTokenizer::Load(dir.ComponentDir("tokenizer"), dir.metadata().tokenizer_rules));
  if (!lines_path) {
    int64_t untruncated_length = 0;
    const std::vector<int64_t> ids = tokenizer.EncodeToLength(args.positional()[0], &untruncated_length);
    std::printf("%s\n", nlohmann::json(ids).dump().c_str());
    if (untruncated_length > static_cast<int64_t>(ids.size())) {
      std::fprintf(stderr, "note: the prompt has %lld tokens; the pipeline keeps the first %zu\n",
                   static_cast<long long>(untruncated_length), ids.size());
    }
    return absl::OkStatus();
  }
  // One JSON string per line, so that texts with newlines, control characters or any Unicode
  // travel exactly (the reference tests feed thousands of generated strings in one call).
  VQD_ASSIGN_OR_RETURN(std::string text, vqd::io::ReadFile(*lines_path, uint64_t{1} << 30));
  std::string out;
  int64_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.empty()) continue;
    nlohmann::json parsed = nlohmann::json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat(*lines_path, ":", line_number, ": expected a JSON string on each line"));
    }
    out += nlohmann::json(tokenizer.EncodeToLength(parsed.get<std::string>())).dump();
    out += '\n';
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  return absl::OkStatus();
}

absl::Status RunMakeModel(const CliArgs& args) {
  VQD_ASSIGN_OR_RETURN(std::string out, args.Required("out"));
  VQD_ASSIGN_OR_RETURN(std::string preset, args.Required("preset"));
  if (preset == "demo") {
    if (args.Has("seed") || args.Has("dtype")) {
      return absl::InvalidArgumentError("--preset demo is the trained model as built in: --seed and --dtype do not apply");
    }
    VQD_RETURN_IF_ERROR(vqd::demo_model::WriteModel(out));
    std::fprintf(stderr, "wrote the trained demo model (%s) to %s\n", vqd::demo_model::CacheName().c_str(), out.c_str());
    return absl::OkStatus();
  }
  vqd::pipeline::MakeModelOptions options;
  VQD_ASSIGN_OR_RETURN(options.preset, vqd::pipeline::ParseModelPreset(preset));
  VQD_ASSIGN_OR_RETURN(options.seed, args.Uint("seed", 0));
  VQD_ASSIGN_OR_RETURN(options.dtype, vqd::ParseDtype(args.Get("dtype").value_or("fp32")));
  VQD_RETURN_IF_ERROR(vqd::pipeline::MakeRandomModel(out, options));
  std::fprintf(stderr, "wrote a random %s model to %s\n", preset.c_str(), out.c_str());
  return absl::OkStatus();
}

absl::Status RunConvertOfficial(const CliArgs& args) {
  vqd::convert::OfficialConversionOptions options;
  VQD_ASSIGN_OR_RETURN(options.checkpoint, args.Required("checkpoint"));
  VQD_ASSIGN_OR_RETURN(options.config, args.Required("config"));
  VQD_ASSIGN_OR_RETURN(options.out, args.Required("out"));
  options.bpe = args.Get("bpe").value_or("");
  options.vqgan_config = args.Get("vqgan-config");
  options.shrink_table = args.Get("shrink-table");
  options.use_ema = !args.Has("no-ema");
  options.zero_shot_null = args.Has("zero-shot-null");
  if (args.Has("guidance")) {
    VQD_ASSIGN_OR_RETURN(double g, args.Double("guidance", 1.0));
    options.guidance_scale = g;
  }
  if (args.Has("truncation")) {
    VQD_ASSIGN_OR_RETURN(double r, args.Double("truncation", 1.0));
    options.truncation_rate = r;
  }
  VQD_ASSIGN_OR_RETURN(vqd::convert::OfficialConversionReport report, vqd::convert::ConvertOfficialCheckpoint(options));
  std::fprintf(stderr, "converted %s\nwrote %s\n", report.Summary().c_str(), options.out.c_str());
  return absl::OkStatus();
}

// Whether any component folder holds *.fp16.* weights (the variant a float16 server loads).
bool HasFp16Variant(const vqd::pipeline::ModelDirectory& dir) {
  for (const auto& component : fs::directory_iterator(dir.root())) {
    if (!component.is_directory()) continue;
    for (const auto& entry : fs::directory_iterator(component.path())) {
      if (absl::StrContains(entry.path().filename().string(), ".fp16.")) return true;
    }
  }
  return false;
}

// Loads the directory exactly as the server does (the pipeline's own config checks, weights-file
// lookup and tensor name/shape checks), on the CPU in float32, once per weights variant present,
// so that inspect never calls a directory good that the server would refuse.
absl::Status ValidateAsTheLoaderDoes(const vqd::pipeline::ModelDirectory& dir) {
  std::vector<std::string> variants = {""};
  if (HasFp16Variant(dir)) variants.push_back("fp16");
  for (const std::string& variant : variants) {
    vqd::pipeline::PipelineOptions options;
    options.device = torch::kCPU;
    options.dtype = torch::kFloat32;
    options.variant = variant;
    options.fused = false;
    absl::StatusOr<std::unique_ptr<vqd::pipeline::VqDiffusionPipeline>> loaded =
        vqd::pipeline::VqDiffusionPipeline::Load(dir.root(), options);
    if (!loaded.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("model directory ", dir.root(), " is broken (",
                                                        variant.empty() ? "full-precision" : "fp16",
                                                        " weights): ", loaded.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status RunInspect(const CliArgs& args) {
  if (args.positional().size() != 1) return absl::InvalidArgumentError("inspect takes exactly one DIR argument");
  const std::string root = args.positional()[0];
  VQD_ASSIGN_OR_RETURN(vqd::pipeline::ModelDirectory dir, vqd::pipeline::ModelDirectory::Open(root));
  VQD_RETURN_IF_ERROR(ValidateAsTheLoaderDoes(dir));
  std::printf("model directory %s\n", root.c_str());
  std::printf("learned null embeddings: %s\n", dir.has_learned_embeddings() ? "yes" : "no (guidance falls back to the empty prompt)");
  int64_t total = 0;
  std::printf("conditioning: %s\n", vqd::pipeline::ConditioningName(dir.conditioning()));
  std::printf("sampler: %s", vqd::pipeline::SamplerName(dir.metadata().sampler));
  if (dir.metadata().guidance_scale) std::printf(", default guidance %g", *dir.metadata().guidance_scale);
  if (dir.metadata().truncation_rate) std::printf(", default truncation %g", *dir.metadata().truncation_rate);
  std::printf("\n");
  for (const char* component : {"text_encoder", "transformer", "class_transformer", "vqvae",
                                "learned_classifier_free_sampling_embeddings", "scheduler", "tokenizer"}) {
    const std::string cdir = dir.ComponentDir(component);
    if (!fs::is_directory(cdir)) continue;
    std::printf("\n[%s]\n", component);
    for (const char* config_name : {"config.json", "scheduler_config.json", "tokenizer_config.json"}) {
      const std::string path = absl::StrCat(cdir, "/", config_name);
      if (!fs::exists(path)) continue;
      VQD_ASSIGN_OR_RETURN(vqd::io::JsonConfig config, vqd::io::JsonConfig::Load(path));
      for (const auto& [key, value] : config.json().items()) {
        if (key.rfind("_", 0) == 0 || value.is_null()) continue;
        std::string text = value.dump();
        if (text.size() > 100) text = text.substr(0, 97) + "...";
        std::printf("  %-28s %s\n", key.c_str(), text.c_str());
      }
    }
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(cdir)) {
      const std::string name = entry.path().filename().string();
      const std::string ext = entry.path().extension().string();
      if (ext == ".safetensors" || ext == ".bin") files.push_back(name);
    }
    std::sort(files.begin(), files.end());
    for (const auto& name : files) {
      VQD_ASSIGN_OR_RETURN(vqd::io::TensorMap tensors, vqd::io::ReadWeightsFile(absl::StrCat(cdir, "/", name)));
      int64_t params = 0;
      std::map<std::string, int64_t> by_dtype;
      for (const auto& [key, t] : tensors) {
        params += t.numel();
        by_dtype[vqd::DtypeName(t.scalar_type())] += t.numel();
      }
      std::vector<std::string> dtypes;
      for (const auto& [d, n] : by_dtype) dtypes.push_back(absl::StrCat(d, " ", n));
      std::printf("  weights %-40s %zu tensors, %lld parameters (%s)\n", name.c_str(), tensors.size(),
                  static_cast<long long>(params), absl::StrJoin(dtypes, ", ").c_str());
      if (name == files.front()) total += params;
    }
  }
  std::printf("\ntotal parameters (first weights file of each component): %lld\n", static_cast<long long>(total));
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  vqd::ConfigureCpuThreads();
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  if (argc < 2) return UsageError("missing command");
  const std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::printf("%s", kUsage);
    return 0;
  }
  const std::vector<std::string> rest(argv + 2, argv + argc);
  std::set<std::string> valued, switches;
  if (command == "generate") {
    valued = {"model", "prompt", "class-label", "out", "steps", "guidance", "truncation", "num-images", "seed",
              "device", "dtype", "variant", "save-tokens", "save-trace", "time-stride",
              "prior-rule", "prior-weight", "init-image", "strength", "mask", "preview-every"};
    switches = {"quiet"};
  } else if (command == "tokenize") {
    valued = {"model", "lines"};
  } else if (command == "make-model") {
    valued = {"preset", "out", "seed", "dtype"};
  } else if (command == "convert-official") {
    valued = {"checkpoint", "config", "bpe", "out", "vqgan-config", "shrink-table", "guidance", "truncation"};
    switches = {"no-ema", "zero-shot-null"};
  } else if (command == "inspect") {
  } else {
    return UsageError(absl::StrCat("unknown command \"", command, "\""));
  }
  absl::StatusOr<CliArgs> args = CliArgs::Parse(rest, valued, switches);
  if (!args.ok()) return UsageError(std::string(args.status().message()));
  if (command != "tokenize" && command != "inspect" && !args->positional().empty()) {
    return UsageError(absl::StrCat("unexpected argument \"", args->positional()[0], "\""));
  }
  absl::Status status;
  try {
    if (command == "generate") status = RunGenerate(*args);
    if (command == "tokenize") status = RunTokenize(*args);
    if (command == "make-model") status = RunMakeModel(*args);
    if (command == "inspect") status = RunInspect(*args);
    if (command == "convert-official") status = RunConvertOfficial(*args);
  } catch (const std::exception& e) {
    status = absl::InternalError(e.what());
  }
  if (!status.ok()) {
    // Missing or malformed arguments are usage errors; everything else is a failure of the command.
    if (status.code() == absl::StatusCode::kInvalidArgument &&
        (absl::StrContains(status.message(), "--") || absl::StrContains(status.message(), "takes exactly"))) {
      return UsageError(std::string(status.message()));
    }
    return Fail(status);
  }
  return 0;
}
