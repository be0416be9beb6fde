#include "io/png.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace vqd::io {
namespace {

// Fixtures written by a few lines of Python (zlib + struct), covering formats our encoder never
// produces.

// 2x2 8-bit gray: 0, 85 / 170, 255.
const std::string kGray2x2(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x02\x08\x00\x00\x00"
    "\x00\x57\xdd\x52\xf8\x00\x00\x00\x0e\x49\x44\x41\x54\x78\x9c\x63\x60\x08\x65\x58\xf5\x1f\x00\x03\xad\x01\xff\x67"
    "\xfb\xca\x09\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    71);
// 3x1 palette red, green, blue with alpha 255, 128, 0 (tRNS).
const std::string kPalette3x1(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x03\x00\x00\x00\x01\x08\x03\x00\x00"
    "\x00\x2c\x3e\xe4\x86\x00\x00\x00\x09\x50\x4c\x54\x45\xff\x00\x00\x00\xff\x00\x00\x00\xff\x2d\x4a\xcd\x8a\x00\x00"
    "\x00\x03\x74\x52\x4e\x53\xff\x80\x00\x7f\x6d\x68\x78\x00\x00\x00\x0c\x49\x44\x41\x54\x78\x9c\x63\x60\x60\x64\x02"
    "\x00\x00\x08\x00\x04\x36\xe0\xb0\xa6\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    105);
// 2x1 16-bit RGB: (0x1234, 0x5678, 0x9abc), (0xffff, 0, 0x00ff).
const std::string kRgb16_2x1(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x02\x00\x00\x00\x01\x10\x02\x00\x00"
    "\x00\x2b\xd0\x34\x9e\x00\x00\x00\x15\x49\x44\x41\x54\x78\x9c\x63\x10\x32\x09\xab\x98\xb5\xe7\xff\x7f\x06\x06\x86"
    "\xff\x00\x20\x9d\x05\x68\x32\x1d\xcf\x2e\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    78);
// 1x2 8-bit gray+alpha: (10, 20), (30, 40).
const std::string kGrayAlpha1x2(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x02\x08\x04\x00\x00"
    "\x00\x33\x88\x7e\xac\x00\x00\x00\x0e\x49\x44\x41\x54\x78\x9c\x63\xe0\x12\x61\x90\xd3\x00\x00\x00\xec\x00\x65\xe0"
    "\xf8\x5c\xd3\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    71);
// 20000x1 gray: wider than the 16384 limit.
const std::string kTooWide(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x4e\x20\x00\x00\x00\x01\x08\x00\x00\x00"
    "\x00\x1e\xdf\xc1\x52\x00\x00\x00\x2a\x49\x44\x41\x54\x78\x9c\xed\xc1\x31\x01\x00\x00\x00\xc2\xa0\xf5\x4f\x6d\x0d"
    "\x0f\xa0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xb8\x30\x4e\x21\x00\x01\x3e"
    "\xb5\xd5\xb5\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    99);
// 16384x16384 RGBA header: 1 GiB decoded, over the 256 MiB limit.
const std::string kTooManyBytes(
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x40\x00\x00\x00\x40\x00\x08\x06\x00\x00"
    "\x00\xa9\xc8\x10\x84\x00\x00\x00\x0b\x49\x44\x41\x54\x78\x9c\x63\x60\x80\x01\x00\x00\x0a\x00\x01\x7f\x80\x74\x5e"
    "\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82",
    68);

std::vector<uint8_t> RandomPixels(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (uint8_t& p : out) p = static_cast<uint8_t>(rng());
  return out;
}

TEST(Png, RoundTripsRgbAndRgba) {
  for (int channels : {3, 4}) {
    for (auto [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {7, 5}, {64, 48}, {300, 2}}) {
      for (int level : {0, 6, 9}) {
        SCOPED_TRACE(::testing::Message() << w << "x" << h << "x" << channels << " level " << level);
        const std::vector<uint8_t> pixels = RandomPixels(static_cast<size_t>(w) * h * channels, w * 31 + h + level);
        absl::StatusOr<std::string> png = EncodePng(pixels.data(), w, h, channels, level);
        ASSERT_TRUE(png.ok()) << png.status();
        EXPECT_EQ(png->substr(1, 3), "PNG");
        absl::StatusOr<Image> image = DecodePng(*png);
        ASSERT_TRUE(image.ok()) << image.status();
        EXPECT_EQ(image->width, w);
        EXPECT_EQ(image->height, h);
        EXPECT_EQ(image->channels, channels);
        EXPECT_EQ(image->pixels, pixels);
      }
    }
  }
}

TEST(Png, CompressionLevelMatters) {
  const std::vector<uint8_t> flat(256 * 256 * 3, 128);
  absl::StatusOr<std::string> stored = EncodePng(flat.data(), 256, 256, 3, 0);
  absl::StatusOr<std::string> small = EncodePng(flat.data(), 256, 256, 3, 9);
  ASSERT_TRUE(stored.ok() && small.ok());
  EXPECT_GT(stored->size(), flat.size());
  EXPECT_LT(small->size(), 2000u);
}

TEST(Png, DecodesOtherFormatsToRgbOrRgba) {
  absl::StatusOr<Image> gray = DecodePng(kGray2x2);
  ASSERT_TRUE(gray.ok()) << gray.status();
  EXPECT_EQ(gray->channels, 3);
  EXPECT_EQ(gray->pixels, (std::vector<uint8_t>{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255}));

  absl::StatusOr<Image> palette = DecodePng(kPalette3x1);
  ASSERT_TRUE(palette.ok()) << palette.status();
  EXPECT_EQ(palette->channels, 4);
  EXPECT_EQ(palette->pixels, (std::vector<uint8_t>{255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0}));

  absl::StatusOr<Image> rgb16 = DecodePng(kRgb16_2x1);
  ASSERT_TRUE(rgb16.ok()) << rgb16.status();
  EXPECT_EQ(rgb16->channels, 3);
  EXPECT_EQ(rgb16->pixels, (std::vector<uint8_t>{0x12, 0x56, 0x9a, 0xff, 0x00, 0x00}));

  absl::StatusOr<Image> gray_alpha = DecodePng(kGrayAlpha1x2);
  ASSERT_TRUE(gray_alpha.ok()) << gray_alpha.status();
  EXPECT_EQ(gray_alpha->channels, 4);
  EXPECT_EQ(gray_alpha->pixels, (std::vector<uint8_t>{10, 10, 10, 20, 30, 30, 30, 40}));
}

TEST(Png, RejectsOversizedImages) {
  EXPECT_ERROR(DecodePng(kTooWide), absl::StatusCode::kInvalidArgument, "DecodePng");
  EXPECT_ERROR(DecodePng(kTooManyBytes), absl::StatusCode::kInvalidArgument, "more than the limit");
}

TEST(Png, GarbageNeverCrashes) {
  EXPECT_ERROR(DecodePng(""), absl::StatusCode::kInvalidArgument, "not a PNG");
  EXPECT_ERROR(DecodePng("hello world, not a png"), absl::StatusCode::kInvalidArgument, "not a PNG");
  const std::vector<uint8_t> pixels = RandomPixels(20 * 10 * 4, 1);
  const std::string good = *EncodePng(pixels.data(), 20, 10, 4);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodePng(good.substr(0, cut)).ok()) << cut;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    for (int k = 0; k < 3; ++k) bad[8 + rng() % (bad.size() - 8)] = static_cast<char>(rng());
    (void)DecodePng(bad);  // Must not crash; CRCs make most of these fail.
  }
  std::string random_body = good.substr(0, 8);
  for (int i = 0; i < 4096; ++i) random_body.push_back(static_cast<char>(rng()));
  EXPECT_FALSE(DecodePng(random_body).ok());
}

TEST(Png, EncodeRejectsBadArguments) {
  const std::vector<uint8_t> pixels(64 * 3);
  EXPECT_ERROR(EncodePng(nullptr, 8, 8, 3), absl::StatusCode::kInvalidArgument, "no pixels");
  EXPECT_ERROR(EncodePng(pixels.data(), 0, 8, 3), absl::StatusCode::kInvalidArgument, "0x8");
  EXPECT_ERROR(EncodePng(pixels.data(), 8, 20000, 3), absl::StatusCode::kInvalidArgument, "8x20000");
  EXPECT_ERROR(EncodePng(pixels.data(), 8, 8, 2), absl::StatusCode::kInvalidArgument, "2 channels");
  EXPECT_ERROR(EncodePng(pixels.data(), 8, 8, 3, 10), absl::StatusCode::kInvalidArgument, "compression level 10");
}

}  // namespace
}  // namespace vqd::io
