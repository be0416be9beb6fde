// Fuzzes ClipTokenizer::Load (text/clip_tokenizer.h), i.e. the parsing of a tokenizer folder. The
// input is split at each "\n=====\n" into up to five parts, written in this order as
//   tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json
// where an empty part (or a missing one) leaves that file out. With tokenizer.json absent the
// loader reads vocab.json and merges.txt. A tokenizer that loads must then encode and decode
// (a fixed prompt and the input itself) with every id inside its vocabulary.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "text/byte_level_bpe.h"
#include "text/clip_tokenizer.h"

namespace {

constexpr std::string_view kSeparator = "\n=====\n";
constexpr std::array<const char*, 5> kFiles = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                               "special_tokens_map.json"};

const std::string& ScratchDir() {
  static const std::string* dir = [] {
    auto* d = new std::string(vqd::fuzz::MakeScratchDir("fuzz_tokenizer_files"));
    std::atexit([] { vqd::fuzz::RemoveTree(ScratchDir()); });
    return d;
  }();
  return *dir;
}

void CheckIds(const vqd::text::ClipTokenizer& tok, const std::vector<int64_t>& ids) {
  VQD_FUZZ_CHECK(ids.size() >= 2 && ids.front() == tok.bos_id() && ids.back() == tok.eos_id(),
                 "Encode gave %zu ids without bos ... eos", ids.size());
  for (const int64_t id : ids) {
    VQD_FUZZ_CHECK(id >= 0 && id < tok.vocab_size(), "id %lld outside [0, %lld)", static_cast<long long>(id),
                   static_cast<long long>(tok.vocab_size()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string& dir = ScratchDir();
  size_t pos = 0;
  for (const char* name : kFiles) {
    const std::string path = dir + "/" + name;
    std::string_view part;
    if (pos <= input.size()) {
      const size_t end = input.find(kSeparator, pos);
      part = input.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
      pos = end == std::string_view::npos ? input.size() + 1 : end + kSeparator.size();
    }
    if (part.empty()) {
      vqd::fuzz::RemoveFile(path);
    } else {
      vqd::fuzz::WriteFileOrDie(path, part);
    }
  }

  absl::StatusOr<vqd::text::ClipTokenizer> loaded = vqd::text::ClipTokenizer::Load(dir);
  if (vqd::fuzz::Verbose()) std::fprintf(stderr, "ClipTokenizer::Load: %s\n", loaded.status().ToString().c_str());
  if (!loaded.ok()) return 0;
  const vqd::text::ClipTokenizer& tok = *loaded;
  VQD_FUZZ_CHECK(tok.max_length() >= 1, "max_length %lld", static_cast<long long>(tok.max_length()));
  for (const int64_t special : {tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.unk_id()}) {
    VQD_FUZZ_CHECK(special >= 0 && special < tok.vocab_size() && tok.IdToToken(special).has_value(),
                   "special id %lld is not a token", static_cast<long long>(special));
  }

  for (const std::string_view text : {std::string_view("a photo of a Cat, it's 2 dogs!  <|endoftext|> \xCE\xA3\xC3\xA9"),
                                      input.substr(0, 512)}) {
    const std::vector<int64_t> ids = tok.Encode(text);
    CheckIds(tok, ids);
    int64_t untruncated = 0;
    const std::vector<int64_t> fixed = tok.EncodeToLength(text, &untruncated);
    VQD_FUZZ_CHECK(fixed.size() == static_cast<size_t>(tok.max_length()) && untruncated == static_cast<int64_t>(ids.size()),
                   "EncodeToLength gave %zu ids", fixed.size());
    const std::string decoded = tok.Decode(ids, /*skip_special_tokens=*/false);
    VQD_FUZZ_CHECK(vqd::text::EncodeUtf8(vqd::text::DecodeUtf8Lossy(decoded)) == decoded,
                   "Decode produced invalid UTF-8");
  }
  return 0;
}
