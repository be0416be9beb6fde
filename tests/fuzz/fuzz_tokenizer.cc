// Fuzzes ClipTokenizer::Encode / EncodeToLength / Decode (text/clip_tokenizer.h) with the input as a
// prompt (arbitrary bytes: invalid UTF-8 must be handled too). The tokenizer is the project's tiny
// trained vocabulary (text::WriteTinyClipTokenizer), written once at start-up into a scratch
// folder, so the fuzzer needs no files of its own.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "text/bpe_trainer.h"
#include "text/byte_level_bpe.h"
#include "text/clip_tokenizer.h"

namespace {

std::optional<vqd::text::ClipTokenizer>* g_tokenizer = nullptr;

// Valid UTF-8 is a fixed point of lossy decoding.
bool IsValidUtf8(const std::string& s) {
  return vqd::text::EncodeUtf8(vqd::text::DecodeUtf8Lossy(s)) == s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  const std::string dir = vqd::fuzz::MakeScratchDir("fuzz_tokenizer");
  const absl::Status written = vqd::text::WriteTinyClipTokenizer(dir, 512);
  if (!written.ok()) {
    std::fprintf(stderr, "WriteTinyClipTokenizer: %s\n", written.ToString().c_str());
    std::abort();
  }
  absl::StatusOr<vqd::text::ClipTokenizer> tokenizer = vqd::text::ClipTokenizer::Load(dir);
  vqd::fuzz::RemoveTree(dir);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "ClipTokenizer::Load: %s\n", tokenizer.status().ToString().c_str());
    std::abort();
  }
  g_tokenizer = new std::optional<vqd::text::ClipTokenizer>(*std::move(tokenizer));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const vqd::text::ClipTokenizer& tok = **g_tokenizer;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::vector<int64_t> ids = tok.Encode(text);
  VQD_FUZZ_CHECK(ids.size() >= 2 && ids.front() == tok.bos_id() && ids.back() == tok.eos_id(),
                 "Encode gave %zu ids without bos ... eos", ids.size());
  for (const int64_t id : ids) {
    VQD_FUZZ_CHECK(id >= 0 && id < tok.vocab_size(), "id %lld outside [0, %lld)", static_cast<long long>(id),
                   static_cast<long long>(tok.vocab_size()));
    VQD_FUZZ_CHECK(tok.IdToToken(id).has_value(), "id %lld has no token", static_cast<long long>(id));
  }
  // Encoding is deterministic (the second call goes through the word cache).
  VQD_FUZZ_CHECK(tok.Encode(text) == ids, "Encode is not deterministic");

  int64_t untruncated = -1;
  const std::vector<int64_t> fixed = tok.EncodeToLength(text, &untruncated);
  const size_t max_length = static_cast<size_t>(tok.max_length());
  VQD_FUZZ_CHECK(fixed.size() == max_length, "EncodeToLength gave %zu ids, not %zu", fixed.size(), max_length);
  VQD_FUZZ_CHECK(untruncated == static_cast<int64_t>(ids.size()), "untruncated length %lld != %zu",
                 static_cast<long long>(untruncated), ids.size());
  if (ids.size() <= max_length) {
    for (size_t i = 0; i < max_length; ++i) {
      VQD_FUZZ_CHECK(fixed[i] == (i < ids.size() ? ids[i] : tok.pad_id()), "EncodeToLength differs at %zu", i);
    }
  } else {
    for (size_t i = 0; i + 1 < max_length; ++i) VQD_FUZZ_CHECK(fixed[i] == ids[i], "truncation differs at %zu", i);
    VQD_FUZZ_CHECK(fixed.back() == tok.eos_id(), "a truncated prompt does not end with eos");
  }

  const std::string decoded = tok.Decode(ids);
  VQD_FUZZ_CHECK(IsValidUtf8(decoded), "Decode produced invalid UTF-8");
  const std::string decoded_all = tok.Decode(ids, /*skip_special_tokens=*/false);
  VQD_FUZZ_CHECK(IsValidUtf8(decoded_all), "Decode(skip_special_tokens=false) produced invalid UTF-8");

  // Decode must also take ids it never produced: the input read as little-endian 16-bit ids, some of
  // them unknown, a few negative.
  std::vector<int64_t> raw_ids;
  for (size_t i = 0; i + 1 < size; i += 2) {
    const int16_t v = static_cast<int16_t>(data[i] | (data[i + 1] << 8));
    raw_ids.push_back(v);
  }
  VQD_FUZZ_CHECK(IsValidUtf8(tok.Decode(raw_ids, false)), "Decode of raw ids produced invalid UTF-8");
  return 0;
}
