#include "io/gzip.h"

#include <zlib.h>

#include <limits>

#include "absl/strings/str_cat.h"

namespace vqd::io {

bool IsGzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f && static_cast<unsigned char>(bytes[1]) == 0x8b;
}

absl::StatusOr<std::string> Gunzip(std::string_view bytes, uint64_t max_output_bytes, std::string_view name_for_errors) {
  const std::string name(name_for_errors);
  if (!IsGzip(bytes)) return absl::InvalidArgumentError(absl::StrCat(name, ": not a gzip file"));
  if (bytes.size() > std::numeric_limits<uInt>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": ", bytes.size(), " bytes is too large for zlib"));
  }
  z_stream stream{};
  // 16 + MAX_WBITS: a gzip header and trailer around the deflate data.
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) {
    return absl::ResourceExhaustedError(absl::StrCat(name, ": cannot start zlib"));
  }
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  std::string out;
  char buffer[1 << 16];
  absl::Status status;
  while (true) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof(buffer);
    const int rc = inflate(&stream, Z_NO_FLUSH);
    const size_t produced = sizeof(buffer) - stream.avail_out;
    if (out.size() + produced > max_output_bytes) {
      status = absl::InvalidArgumentError(
          absl::StrCat(name, ": decompresses to more than ", max_output_bytes, " bytes"));
      break;
    }
    out.append(buffer, produced);
    if (rc == Z_STREAM_END) {
      if (stream.avail_in == 0) break;
      // Another gzip member follows (what `cat a.gz b.gz` makes): keep going.
      if (inflateReset(&stream) != Z_OK) {
        status = absl::DataLossError(absl::StrCat(name, ": corrupt gzip member"));
        break;
      }
      continue;
    }
    if (rc == Z_BUF_ERROR && stream.avail_in == 0) {
      status = absl::DataLossError(absl::StrCat(name, ": truncated gzip stream"));
      break;
    }
    if (rc != Z_OK) {
      status = absl::DataLossError(
          absl::StrCat(name, ": corrupt gzip stream (", stream.msg != nullptr ? stream.msg : "zlib error", ")"));
      break;
    }
  }
  inflateEnd(&stream);
  if (!status.ok()) return status;
  return out;
}

}  // namespace vqd::io
