// Whole-file reads and atomic writes with errors that name the file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vqd::io {

// Reads all of `path`. Files larger than `max_bytes` are refused before anything is allocated, so a
// caller facing untrusted paths bounds its memory.
absl::StatusOr<std::string> ReadFile(const std::string& path, uint64_t max_bytes);

// Writes `bytes` to `path` atomically: readers see the old file or the complete new one, never a
// partial write (temporary file in the same folder, then rename).
absl::Status WriteFile(const std::string& path, std::string_view bytes);

// WriteFile for content held in several pieces (a header and tensor buffers), without joining them.
absl::Status WriteFileParts(const std::string& path, const std::vector<std::string_view>& parts);

// Size of a regular file, or NotFound / InvalidArgument (not a regular file).
absl::StatusOr<uint64_t> FileSize(const std::string& path);

// Whether `path` names an existing regular file (symlinks followed).
bool IsRegularFile(const std::string& path);

}  // namespace vqd::io
