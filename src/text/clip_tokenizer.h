// CLIP's byte-level BPE tokenizer, reproducing transformers 5.x `CLIPTokenizer` (tokenizers backend,
// no ftfy) as VQDiffusionPipeline uses it; see the project spec's section 5.1 (CLIP tokenizer).
//
// Encoding, in order:
//  1. Invalid UTF-8 in the input is replaced by U+FFFD (one per maximal ill-formed subpart) before
//     anything else, so any byte string can be encoded.
//  2. Special and added tokens (bos, eos, unk, pad and tokenizer.json's added_tokens) are split out of
//     the raw text first, leftmost-longest match, each becoming its id. This is HF's added-token trie;
//     it means that with the ITHQ configuration (pad_token "!", id 0) every literal "!" in a prompt
//     becomes id 0, not 256 ("!</w>") as OpenAI's tokenizer would give. Matching is exact and on the
//     raw text (tokenizer.json marks these tokens normalized=false), so "<|ENDOFTEXT|>" is not split
//     out; lstrip/rstrip/single_word flags are ignored (all false for CLIP).
//  3. Each remaining segment is normalised (NFC, \s+ -> " ", full lowercase), pre-tokenised (CLIP
//     pattern, then the GPT-2 byte-level pattern) and mapped through bytes_to_unicode.
//  4. Each piece is BPE'd with "</w>" on its last symbol (HF's merge loop: lowest rank, then leftmost
//     position); a final symbol that is not in the vocabulary becomes the unk id.
//  5. The ids are wrapped as [bos] + ids + [eos].
//
// Thread-safe: Encode/Decode may be called concurrently (the per-word cache is mutex-guarded and
// bounded). Copies are cheap and share the immutable tables and the cache.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vqd::text {

// Which tokenizer to reproduce.
enum class TokenizerRules {
  // transformers 5.x CLIPTokenizer, as diffusers' VQDiffusionPipeline runs it (described above).
  kTransformers,
  // OpenAI's CLIP SimpleTokenizer as the official VQ-Diffusion code runs it: OpenAiBasicClean
  // (ftfy subset, html.unescape twice) first; no added-token splitting (a literal "!" stays a
  // character, not the pad id); "<|startoftext|>" and "<|endoftext|>" are recognised after
  // lowercasing, anywhere; the CLIP pattern alone pre-tokenises (no GPT-2 split inside its matches).
  kOpenAi,
};

class ClipTokenizer {
 public:
  // Loads a tokenizer directory as saved by transformers:
  //  - `tokenizer.json` (model.vocab, model.merges as "a b" strings or [a, b] pairs, added_tokens),
  //    preferred when present; otherwise `vocab.json` + `merges.txt` (the "#version" header skipped);
  //  - `tokenizer_config.json` (required) and optionally `special_tokens_map.json` (whose entries take
  //    precedence, as in transformers) for bos_token, eos_token, unk_token and pad_token (each a plain
  //    string or an object with "content") and `model_max_length` (default 77).
  // Errors name the file and the key at fault. Files are limited to 64 MiB.
  static absl::StatusOr<ClipTokenizer> Load(const std::string& tokenizer_dir,
                                            TokenizerRules rules = TokenizerRules::kTransformers);

  // [bos] + tokens + [eos], untruncated.
  std::vector<int64_t> Encode(std::string_view text) const;

  // What VQDiffusionPipeline feeds the text encoder (tokenizer(prompt, padding="max_length",
  // max_length=model_max_length) with transformers 5.x): exactly max_length() ids. A short prompt
  // is Encode(text) padded on the right with pad_id(). A prompt over the limit is truncated
  // *before* bos/eos are added, i.e. the first max_length()-1 ids of Encode(text) followed by
  // eos_id(): transformers 5 keeps the eos, as the parity goldens (transformers 5.17) show, unlike
  // transformers 4.x whose untruncated output the pipeline sliced (losing the eos).
  // `untruncated_length`, when given, receives Encode(text).size().
  std::vector<int64_t> EncodeToLength(std::string_view text,
                                      int64_t* untruncated_length = nullptr) const;

  // Byte-level decode for debugging and tools: tokens are concatenated, "</w>" becomes a space, the
  // bytes are decoded as UTF-8 (invalid sequences become U+FFFD) and trailing spaces are trimmed.
  // With `skip_special_tokens`, the ids of bos/eos/unk/pad and special added tokens are dropped
  // (note: with pad "!" that drops literal "!" too, as HF does). Unknown ids decode to U+FFFD.
  std::string Decode(const std::vector<int64_t>& ids, bool skip_special_tokens = true) const;

  int64_t bos_id() const;
  int64_t eos_id() const;
  int64_t pad_id() const;
  int64_t unk_id() const;
  int64_t max_length() const;
  // One more than the largest id of the vocabulary and the added tokens.
  int64_t vocab_size() const;

  // The id of a vocabulary entry or added token given in its byte-level form ("photo</w>").
  std::optional<int64_t> TokenToId(std::string_view token) const;
  // The byte-level text of an id, or nullopt.
  std::optional<std::string> IdToToken(int64_t id) const;

 private:
  struct Impl;
  static absl::StatusOr<ClipTokenizer> LoadUnchecked(const std::string& tokenizer_dir, TokenizerRules rules);
  explicit ClipTokenizer(std::shared_ptr<const Impl> impl);
  std::shared_ptr<const Impl> impl_;
};

}  // namespace vqd::text
