#include "io/weights_file.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "io/file_util.h"
#include "io/safetensors.h"
#include "io/torch_bin.h"

namespace vqd::io {

absl::StatusOr<TensorMap> ReadWeightsFile(const std::string& path) {
  if (absl::EndsWith(path, ".safetensors")) return ReadSafetensors(path);
  if (absl::EndsWith(path, ".bin") || absl::EndsWith(path, ".pt") || absl::EndsWith(path, ".pth")) {
    return ReadTorchBin(path);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": unknown weights file type; expected .safetensors, .bin, .pt or .pth"));
}

std::vector<std::string> WeightsFileCandidates(const std::vector<std::string>& stems, std::string_view variant) {
  std::vector<std::string> out;
  const std::string infix = variant.empty() ? "" : absl::StrCat(".", std::string(variant));
  for (const std::string& prefix :
       variant.empty() ? std::vector<std::string>{""} : std::vector<std::string>{infix, ""}) {
    for (const char* extension : {".safetensors", ".bin"}) {
      for (const std::string& stem : stems) out.push_back(absl::StrCat(stem, prefix, extension));
    }
  }
  return out;
}

absl::StatusOr<std::string> FindFirstExisting(const std::string& dir, const std::vector<std::string>& candidates) {
  for (const std::string& name : candidates) {
    const std::string path = absl::StrCat(dir, "/", name);
    if (IsRegularFile(path)) return path;
  }
  return absl::NotFoundError(
      absl::StrCat("no file in ", dir, " matches: looked for ", absl::StrJoin(candidates, ", ")));
}

absl::StatusOr<std::string> FindWeightsFile(const std::string& component_dir, const std::vector<std::string>& stems,
                                            std::string_view variant) {
  return FindFirstExisting(component_dir, WeightsFileCandidates(stems, variant));
}

}  // namespace vqd::io
