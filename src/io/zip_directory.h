// Reads the central directory of a zip archive without extracting anything. The .bin reader uses
// it to check what each record claims (method, sizes, position) before libtorch's zip reader
// allocates a buffer of the claimed size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vqd::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflated.
  uint16_t flags = 0;
  uint64_t compressed_size = 0;
  uint64_t uncompressed_size = 0;
  uint64_t local_header_offset = 0;
  uint64_t data_offset = 0;  // Where the (possibly compressed) bytes start, past the local header.
  uint32_t crc32 = 0;
  // A name ending in '/' or the DOS directory attribute. miniz "extracts" directories by writing
  // nothing, which would leave a caller's buffer uninitialized.
  bool is_directory = false;
};

// Entries of the archive in `bytes` (zip64 included). Checks that the directory and every entry's
// local header and data lie inside `bytes`; errors are DataLoss/InvalidArgument without a file
// name (callers add it).
absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(std::string_view bytes, size_t max_entries = 1u << 20);

// The CRC-32 zip uses (polynomial 0xEDB88320).
uint32_t ZipCrc32(std::string_view bytes);

}  // namespace vqd::io
