#include "common/test_model.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include <unistd.h>

#include "pipeline/model_factory.h"

namespace vqd::testing {
namespace {

// Removes the scratch folder when the process that made it exits (not in forked children).
struct ScratchFolder {
  std::string path;
  pid_t owner = getpid();
  ~ScratchFolder() {
    if (getpid() != owner || path.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

const std::string& TestScratchDir() {
  static ScratchFolder folder;
  static std::once_flag flag;
  std::call_once(flag, [] {
    // One folder per process: ctest runs test binaries in parallel.
    folder.path =
        (std::filesystem::path(VQD_BINARY_DIR) / "test-models" / std::to_string(getpid())).string();
    std::filesystem::remove_all(folder.path);
    std::filesystem::create_directories(folder.path);
  });
  return folder.path;
}

const std::string& TinyRandomModelDir() {
  static std::string dir;
  static std::once_flag flag;
  std::call_once(flag, [] {
    dir = (std::filesystem::path(TestScratchDir()) / "tiny").string();
    pipeline::MakeModelOptions options;
    options.seed = 1;
    absl::Status status = pipeline::MakeRandomModel(dir, options);
    if (!status.ok()) throw std::runtime_error(std::string(status.message()));
  });
  return dir;
}

}  // namespace vqd::testing
