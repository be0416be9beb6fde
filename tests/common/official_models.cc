#include "common/official_models.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>

#include "common/test_model.h"
#include "convert/official_converter.h"
#include "io/safetensors.h"

namespace vqd::testing {
namespace fs = std::filesystem;

bool HaveOfficialParity() {
  std::error_code ec;
  return ParityDir() && fs::is_directory(fs::path(*ParityDir()) / "official", ec);
}

std::string OfficialPath(const std::string& family, const std::string& file) {
  return (fs::path(*ParityDir()) / "official" / family / file).string();
}

const io::TensorMap& OfficialGoldens(const std::string& family) {
  static std::mutex mu;
  static std::map<std::string, io::TensorMap> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(family);
  if (it == loaded.end()) {
    auto goldens = io::ReadSafetensors(OfficialPath(family, "goldens.safetensors"));
    if (!goldens.ok()) throw std::runtime_error(std::string(goldens.status().message()));
    it = loaded.emplace(family, std::move(*goldens)).first;
  }
  return it->second;
}

const torch::Tensor& OfficialGolden(const std::string& family, const std::string& name) {
  const io::TensorMap& goldens = OfficialGoldens(family);
  auto it = goldens.find(name);
  if (it == goldens.end()) throw std::runtime_error("no official golden tensor " + family + "/" + name);
  return it->second;
}

const nlohmann::json& OfficialMeta(const std::string& family) {
  static std::mutex mu;
  static std::map<std::string, nlohmann::json> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded.find(family);
  if (it == loaded.end()) {
    std::ifstream in(OfficialPath(family, "meta.json"));
    it = loaded.emplace(family, nlohmann::json::parse(in)).first;
  }
  return it->second;
}

const std::string& ConvertedOfficialModel(OfficialModel model) {
  static std::mutex mu;
  static std::map<OfficialModel, std::string> dirs;
  std::lock_guard<std::mutex> lock(mu);
  auto it = dirs.find(model);
  if (it != dirs.end()) return it->second;
  convert::OfficialConversionOptions options;
  std::string name;
  if (model == OfficialModel::kClass) {
    options.checkpoint = OfficialPath("imagenet", "imagenet_small.pth");
    options.config = OfficialPath("imagenet", "config.yaml");
    name = "official-imagenet";
  } else {
    options.checkpoint = OfficialPath("text", "text_small_learnable.pth");
    options.config = OfficialPath("text", "config.yaml");
    // The small model's tokenizer is the real CLIP BPE cut at end_idx 290; the tiny parity model's
    // merges.txt is that BPE.
    options.bpe = TinyPath("model/tokenizer/merges.txt");
    options.zero_shot_null = model == OfficialModel::kTextZeroShot;
    options.use_ema = model != OfficialModel::kTextNoEma;
    name = model == OfficialModel::kText ? "official-text" : model == OfficialModel::kTextZeroShot ? "official-text-zero-shot"
                                                                                                   : "official-text-no-ema";
  }
  options.out = (fs::path(TestScratchDir()) / name).string();
  auto report = convert::ConvertOfficialCheckpoint(options);
  if (!report.ok()) throw std::runtime_error(std::string(report.status().message()));
  return dirs.emplace(model, options.out).first->second;
}

}  // namespace vqd::testing
