// A small CLIP-style byte-level BPE vocabulary that the project makes itself, so that a complete
// model directory (`vqd make-model --preset tiny`) needs no downloaded files.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vqd::text {

// The built-in English training text: short image captions written for this project.
std::string_view TinyTrainingCorpus();

// Trains byte-level BPE merges on `corpus` with CLIP's conventions: the text is normalised and
// pre-tokenised exactly as ClipTokenizer does, each word starts as its byte-level characters with
// "</w>" on the last one, and each step merges the most frequent adjacent pair (ties broken by the
// smaller pair in byte order of (left, right)) everywhere, left to right. Stops after `num_merges`
// merges or when no pair is left. Deterministic.
std::vector<std::pair<std::string, std::string>> TrainByteLevelBpe(std::string_view corpus,
                                                                   int num_merges);

// Writes a CLIP-layout tokenizer trained on TinyTrainingCorpus() into `dir` (created if needed):
//  - vocab.json: the 256 byte-level characters (bytes_to_unicode, CLIP order, so "!" is id 0), the
//    same 256 with "</w>", one token per merge whose result is new, then "<|startoftext|>" and
//    "<|endoftext|>" as the last two ids;
//  - merges.txt with a "#version: 0.2" header;
//  - tokenizer_config.json (CLIPTokenizer, bos "<|startoftext|>", eos/unk "<|endoftext|>", pad "!"
//    as in microsoft/vq-diffusion-ithq, model_max_length 77) and special_tokens_map.json.
// `num_merges` must be in [0, 100000]; the corpus supports about 1500. Output is byte-identical
// for the same arguments.
absl::Status WriteTinyClipTokenizer(const std::string& dir, int num_merges = 512);

}  // namespace vqd::text
