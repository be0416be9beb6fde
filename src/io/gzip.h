// gzip streams (RFC 1952), as the official CLIP BPE file bpe_simple_vocab_16e6.txt.gz is stored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace vqd::io {

// Whether `bytes` starts with the gzip magic number.
bool IsGzip(std::string_view bytes);

// Decompresses a gzip stream (concatenated members included). Output beyond `max_output_bytes` is
// refused rather than allocated, so a small hostile file cannot expand into gigabytes; a corrupt or
// truncated stream is DataLoss. `name_for_errors` names the input in messages.
absl::StatusOr<std::string> Gunzip(std::string_view bytes, uint64_t max_output_bytes, std::string_view name_for_errors);

}  // namespace vqd::io
