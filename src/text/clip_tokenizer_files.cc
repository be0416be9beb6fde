#include "text/clip_tokenizer_files.h"

#include <filesystem>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "io/file_util.h"
#include "io/gzip.h"
#include "text/byte_level_bpe.h"

namespace vqd::text {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kMaxBpeFileBytes = 64ull << 20;  // the official .gz is 1.3 MB, 3.5 MB unpacked
constexpr int64_t kMaxEndIdx = 1 << 22;

}  // namespace

absl::StatusOr<std::vector<std::string>> ClipVocabulary(const BpeMerges& merges, bool skip_repeated_results) {
  std::vector<std::string> tokens;
  std::set<std::string> seen;
  auto add = [&](const std::string& token) -> absl::Status {
    if (seen.insert(token).second) {
      tokens.push_back(token);
    } else if (!skip_repeated_results) {
      return absl::InvalidArgumentError(absl::StrCat("BPE vocabulary: token \"", token, "\" appears twice"));
    }
    return absl::OkStatus();
  };
  const auto& byte_chars = ByteToUnicode();
  for (unsigned char b : ByteLevelOrder()) VQD_RETURN_IF_ERROR(add(byte_chars[b]));
  for (unsigned char b : ByteLevelOrder()) VQD_RETURN_IF_ERROR(add(byte_chars[b] + std::string(kEndOfWord)));
  for (const auto& [a, b] : merges) VQD_RETURN_IF_ERROR(add(a + b));
  VQD_RETURN_IF_ERROR(add("<|startoftext|>"));
  VQD_RETURN_IF_ERROR(add("<|endoftext|>"));
  return tokens;
}

absl::Status WriteClipTokenizerFiles(const std::string& dir, const std::vector<std::string>& vocabulary,
                                     const BpeMerges& merges) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t id = 0; id < vocabulary.size(); ++id) vocab[vocabulary[id]] = id;
  std::string merges_txt = "#version: 0.2\n";
  for (const auto& [a, b] : merges) merges_txt += a + " " + b + "\n";
  nlohmann::ordered_json config = {
      {"add_prefix_space", false},
      {"bos_token", "<|startoftext|>"},
      {"do_lower_case", true},
      {"eos_token", "<|endoftext|>"},
      {"errors", "replace"},
      {"model_max_length", 77},
      {"pad_token", "!"},
      {"tokenizer_class", "CLIPTokenizer"},
      {"unk_token", "<|endoftext|>"},
  };
  nlohmann::ordered_json special_map = {
      {"bos_token", "<|startoftext|>"},
      {"eos_token", "<|endoftext|>"},
      {"pad_token", "!"},
      {"unk_token", "<|endoftext|>"},
  };
  const fs::path root(dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return absl::PermissionDeniedError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  VQD_RETURN_IF_ERROR(io::WriteFile((root / "vocab.json").string(), vocab.dump() + "\n"));
  VQD_RETURN_IF_ERROR(io::WriteFile((root / "merges.txt").string(), merges_txt));
  VQD_RETURN_IF_ERROR(io::WriteFile((root / "tokenizer_config.json").string(), config.dump(2) + "\n"));
  return io::WriteFile((root / "special_tokens_map.json").string(), special_map.dump(2) + "\n");
}

absl::StatusOr<BpeMerges> ReadOpenAiBpeMerges(const std::string& path, int64_t end_idx) {
  if (end_idx < 258 || end_idx > kMaxEndIdx) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": end_idx ", end_idx, " must be in [258, ", kMaxEndIdx, "] (256 bytes + 2 specials)"));
  }
  VQD_ASSIGN_OR_RETURN(std::string bytes, io::ReadFile(path, kMaxBpeFileBytes));
  if (io::IsGzip(bytes)) {
    VQD_ASSIGN_OR_RETURN(bytes, io::Gunzip(bytes, kMaxBpeFileBytes, path));
  }
  const size_t wanted = static_cast<size_t>(end_idx - 258);
  BpeMerges merges;
  merges.reserve(wanted);
  size_t pos = 0, line_no = 0;
  while (merges.size() < wanted && pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string::npos) end = bytes.size();
    std::string_view line(bytes.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1) {
      // The official code drops the first line unseen; it must be the header, or a merge is lost.
      if (line.find("#version") == std::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": the first line is not a \"#version\" header; not a CLIP BPE file (the official code skips it)"));
      }
      continue;
    }
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 >= line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": line ", line_no, ": expected two symbols separated by one space"));
    }
    merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
  }
  if (merges.size() < wanted) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": has ", merges.size(), " merges; end_idx ", end_idx,
                                                   " needs ", wanted));
  }
  return merges;
}

}  // namespace vqd::text
