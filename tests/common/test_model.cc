#include "common/test_model.h"

#include <filesystem>
#include <mutex>
#include <stdexcept>

#include <unistd.h>

#include "common/scratch_dirs.h"
#include "pipeline/model_factory.h"

namespace vqd::testing {

const std::string& TestScratchDir() {
  static std::string dir;
  static std::once_flag flag;
  std::call_once(flag, [] {
    // One folder per process: ctest runs test binaries in parallel.
    dir = (std::filesystem::path(VQD_BINARY_DIR) / "test-models" / std::to_string(getpid())).string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    ScratchDirs::Get().Add(dir);
  });
  return dir;
}

namespace {

std::string MakeModel(const std::string& name, pipeline::ModelPreset preset) {
  const std::string dir = (std::filesystem::path(TestScratchDir()) / name).string();
  pipeline::MakeModelOptions options;
  options.preset = preset;
  options.seed = 1;
  absl::Status status = pipeline::MakeRandomModel(dir, options);
  if (!status.ok()) throw std::runtime_error(std::string(status.message()));
  return dir;
}

}  // namespace

const std::string& TinyRandomModelDir() {
  static std::string dir;
  static std::once_flag flag;
  std::call_once(flag, [] { dir = MakeModel("tiny", pipeline::ModelPreset::kTiny); });
  return dir;
}

const std::string& SmallRandomModelDir() {
  static std::string dir;
  static std::once_flag flag;
  std::call_once(flag, [] { dir = MakeModel("small", pipeline::ModelPreset::kSmall); });
  return dir;
}

}  // namespace vqd::testing
