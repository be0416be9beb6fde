#include "server/default_model.h"

#include <cstdlib>
#include <filesystem>

#include <spdlog/spdlog.h>
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "demo_model/demo_model.h"

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
  const fs::path dir = fs::path(DefaultCacheDir()) / "models" / demo_model::CacheName();
  std::error_code ec;
  if (fs::exists(dir / "model_index.json", ec)) return dir.string();
  fs::create_directories(dir.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir.parent_path().string(), ": ", ec.message()));
  spdlog::info("no --model given: writing the built-in demo model to {}", dir.string());
  absl::Status status = demo_model::WriteModel(dir.string());
  // Concurrent first starts: the one that lost the rename race serves the winner's copy.
  if (!status.ok() && fs::exists(dir / "model_index.json", ec)) return dir.string();
  VQD_RETURN_IF_ERROR(status);
  return dir.string();
}

}  // namespace vqd::server
