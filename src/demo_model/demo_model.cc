#include "demo_model/demo_model.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "demo_model/demo_model_files.h"

namespace vqd::demo_model {
namespace fs = std::filesystem;

namespace {

absl::Status WriteFile(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", path.parent_path().string(), ": ", ec.message()));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", bytes.size(), " bytes to ", path.string()));
  return absl::OkStatus();
}

}  // namespace

std::string CacheName() { return absl::StrCat("demo-", std::string(Fingerprint())); }

absl::Status WriteModel(const std::string& dir) {
  const fs::path target = fs::absolute(fs::path(dir));
  std::error_code ec;
  if (fs::exists(target, ec)) return absl::AlreadyExistsError(absl::StrCat(dir, " exists"));
  const fs::path staging = target.parent_path() / absl::StrCat(".", target.filename().string(), ".partial-", getpid());
  fs::remove_all(staging, ec);
  absl::Status status;
  for (const EmbeddedFile& file : Files()) {
    status = WriteFile(staging / file.path, file.bytes());
    if (!status.ok()) break;
  }
  if (status.ok()) {
    fs::rename(staging, target, ec);
    if (ec) status = absl::InternalError(absl::StrCat("cannot move the model to ", target.string(), ": ", ec.message()));
  }
  if (!status.ok()) fs::remove_all(staging, ec);
  return status;
}

}  // namespace vqd::demo_model
