// PNG encoding of generated images and decoding of PNGs (tests, image inputs) with libpng.
// Decoding treats its input as untrusted: dimensions and the decoded size are bounded, and libpng
// errors come back as statuses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vqd::io {

inline constexpr int kMaxPngDimension = 16384;
inline constexpr uint64_t kMaxPngPixelBytes = 256ull << 20;

// 8-bit RGB (channels 3) or RGBA (channels 4) pixels, row-major, rows packed without padding.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // width * height * channels bytes.
};

// Encodes `pixels` (width * height * channels bytes, channels 3 or 4) as PNG bytes.
// `compression_level` is zlib's 0 (none) to 9 (smallest).
absl::StatusOr<std::string> EncodePng(const uint8_t* pixels, int width, int height, int channels,
                                      int compression_level = 6);

// Decodes any PNG (palette, gray, 16-bit, interlaced, with or without alpha) to 8-bit RGB, or RGBA
// when the image has transparency.
absl::StatusOr<Image> DecodePng(std::string_view bytes);

}  // namespace vqd::io
