// Writing a CLIP tokenizer folder as transformers saves CLIPTokenizer (vocab.json, merges.txt,
// tokenizer_config.json, special_tokens_map.json), and reading OpenAI's BPE merges file the way the
// official SimpleTokenizer cuts it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vqd::text {

using BpeMerges = std::vector<std::pair<std::string, std::string>>;

// The tokens of a CLIP vocabulary in id order: the 256 byte-level characters (CLIP order, so "!" is
// id 0), the same 256 with "</w>", one token per merge (its result), then "<|startoftext|>" and
// "<|endoftext|>". With `skip_repeated_results` a merge whose result is already a token adds none;
// otherwise a repeated result is an error (OpenAI's vocabulary has none).
absl::StatusOr<std::vector<std::string>> ClipVocabulary(const BpeMerges& merges, bool skip_repeated_results);

// Writes the tokenizer folder `dir` (created if needed): vocab.json for `vocabulary` (ids in
// order), merges.txt with a "#version: 0.2" header, and the configs of microsoft/vq-diffusion-ithq
// (CLIPTokenizer; bos "<|startoftext|>", eos and unk "<|endoftext|>", pad "!" = id 0, which is also
// the official code's pad value; model_max_length 77).
absl::Status WriteClipTokenizerFiles(const std::string& dir, const std::vector<std::string>& vocabulary,
                                     const BpeMerges& merges);

// The merges OpenAI's SimpleTokenizer(end_idx) uses from `path`: the official
// bpe_simple_vocab_16e6.txt.gz or a CLIP merges.txt (plain text), first line skipped as the
// official code does (both files start with a "#version" header line, which is checked), then the
// next end_idx - 258 lines. The vocabulary then has end_idx + 256 tokens. A file with fewer merges
// than end_idx asks for is an error.
absl::StatusOr<BpeMerges> ReadOpenAiBpeMerges(const std::string& path, int64_t end_idx);

}  // namespace vqd::text
