// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON describing each tensor (dtype, shape, [begin, end) byte offsets
// into the data section), then the data section. Readers treat the file as untrusted: every length,
// offset and dtype x shape product is checked before anything is allocated or touched.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "io/tensor_map.h"

namespace vqd::io {

// The free-form "__metadata__" object (string -> string) of a safetensors header.
using SafetensorsMetadata = std::map<std::string, std::string>;

// Largest header accepted (the reference implementation's limit too).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

// Memory-maps `path` and returns CPU tensors aliasing the mapping (the mapping lives as long as any
// tensor does; a tensor's whole pages leave the process when it dies, so dropping each tensor once
// used keeps at most the live ones resident). Tensors whose bytes are not aligned to their element
// size are copied instead.
// Supported dtypes: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL. `metadata`, when given, receives
// "__metadata__" (empty if absent).
absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path, SafetensorsMetadata* metadata = nullptr);

// Same checks over a buffer; tensors own copies of their data. `name_for_errors` stands in for the
// path in error messages. Used by fuzzers and for in-memory data.
absl::StatusOr<TensorMap> ParseSafetensors(std::string_view bytes, std::string_view name_for_errors,
                                           SafetensorsMetadata* metadata = nullptr);

// Serializes `tensors` (any device and layout; written as contiguous CPU data) the way the Python
// library does: header keys sorted, header padded with spaces to a multiple of 8, data ordered by
// element size then name so every tensor stays aligned, "__metadata__" when non-empty.
absl::StatusOr<std::string> SerializeSafetensors(const TensorMap& tensors, const SafetensorsMetadata& metadata = {});

// SerializeSafetensors written atomically to `path` (temporary file in the same folder, then rename).
absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors,
                              const SafetensorsMetadata& metadata = {});

}  // namespace vqd::io
