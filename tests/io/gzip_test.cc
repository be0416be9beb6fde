#include "io/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "test_util.h"

namespace vqd::io {
namespace {

std::string Compress(const std::string& text) {
  z_stream s{};
  EXPECT_EQ(deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&s, text.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  s.avail_in = static_cast<uInt>(text.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

TEST(Gzip, RoundTripsAndConcatenatedMembers) {
  const std::string text = "\"bpe_simple_vocab_16e6.txt#version: 0.2\ni n\nt h\n";
  absl::StatusOr<std::string> out = Gunzip(Compress(text), 1 << 20, "bpe.txt.gz");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, text);
  absl::StatusOr<std::string> two = Gunzip(Compress("ab") + Compress("cd"), 1 << 20, "two.gz");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, "abcd");
  EXPECT_TRUE(IsGzip(Compress("")));
  EXPECT_FALSE(IsGzip("#version: 0.2"));
}

TEST(Gzip, RefusesBadInput) {
  const std::string big = Compress(std::string(1 << 20, 'a'));
  EXPECT_ERROR(Gunzip(big, 1000, "bomb.gz"), absl::StatusCode::kInvalidArgument, "decompresses to more than 1000");
  EXPECT_ERROR(Gunzip(big.substr(0, big.size() / 2), 2 << 20, "half.gz"), absl::StatusCode::kDataLoss, "truncated");
  std::string corrupt = Compress("hello world hello world");
  corrupt[corrupt.size() - 6] ^= 0x55;  // the CRC
  EXPECT_ERROR(Gunzip(corrupt, 1 << 20, "crc.gz"), absl::StatusCode::kDataLoss, "crc.gz: corrupt");
  EXPECT_ERROR(Gunzip("plain text", 1 << 20, "plain.txt"), absl::StatusCode::kInvalidArgument, "not a gzip file");
}

}  // namespace
}  // namespace vqd::io
