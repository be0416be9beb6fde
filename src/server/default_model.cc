#include "server/default_model.h"

#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "pipeline/model_factory.h"

namespace vqd::server {
namespace fs = std::filesystem;

std::string DefaultCacheDir() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v != nullptr ? v : "";
  };
  if (!env("VQD_CACHE_DIR").empty()) return env("VQD_CACHE_DIR");
  if (!env("XDG_CACHE_HOME").empty()) return env("XDG_CACHE_HOME") + "/vqd";
  if (!env("HOME").empty()) return env("HOME") + "/.cache/vqd";
  return "/tmp/vqd-cache";
}

absl::StatusOr<std::string> EnsureDefaultModel() {
  const fs::path dir = fs::path(DefaultCacheDir()) / "models" / "tiny-random";
  std::error_code ec;
  if (fs::exists(dir / "model_index.json", ec)) return dir.string();
  fs::create_directories(dir.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir.parent_path().string(), ": ", ec.message()));
  // Written beside and renamed into place, so concurrent first starts cannot see half a model.
  const fs::path staging = dir.parent_path() / absl::StrCat(".tiny-random-", getpid());
  fs::remove_all(staging, ec);
  spdlog::info("no --model given: writing the built-in tiny random model to {}", dir.string());
  pipeline::MakeModelOptions options;
  VQD_RETURN_IF_ERROR(pipeline::MakeRandomModel(staging.string(), options));
  fs::rename(staging, dir, ec);
  if (ec) {
    fs::remove_all(staging);
    if (fs::exists(dir / "model_index.json")) return dir.string();  // another process won the race
    return absl::InternalError(absl::StrCat("cannot move the model to ", dir.string(), ": ", ec.message()));
  }
  return dir.string();
}

}  // namespace vqd::server
