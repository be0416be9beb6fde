#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "io/file_util.h"
#include "test_util.h"

namespace vqd::io {
namespace {

using testing_util::MakeTempDir;

// A file made of an 8-byte length, `header` and `data`.
std::string MakeSafetensors(const std::string& header, const std::string& data) {
  const uint64_t n = header.size();
  std::string out(reinterpret_cast<const char*>(&n), 8);
  return out + header + data;
}

std::string Floats(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), sizeof(v));
  return out;
}

// Whether `p` lies in a memory mapping of `path` (per /proc/self/maps).
bool IsInsideMappingOf(const void* p, const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto address = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    if (line.size() < path.size() || line.compare(line.size() - path.size(), path.size(), path) != 0) continue;
    unsigned long begin = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &begin, &end) == 2 && address >= begin && address < end) return true;
  }
  return false;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }

  // Writes `bytes` to a file and reads it back with ReadSafetensors; also checks that
  // ParseSafetensors over the same bytes agrees on success or failure.
  absl::StatusOr<TensorMap> ReadBytes(const std::string& bytes, const std::string& name = "t.safetensors") {
    const std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFile(path, bytes).ok());
    absl::StatusOr<TensorMap> from_file = ReadSafetensors(path);
    absl::StatusOr<TensorMap> from_buffer = ParseSafetensors(bytes, path);
    EXPECT_EQ(from_file.status(), from_buffer.status());
    return from_file;
  }
  std::string Path(const std::string& name = "t.safetensors") const { return dir_ + "/" + name; }

  std::string dir_;
};

TensorMap OneOfEachDtype() {
  torch::manual_seed(0);
  TensorMap tensors;
  tensors["f64"] = torch::randn({3, 2}, torch::kFloat64);
  tensors["f32"] = torch::randn({5}, torch::kFloat32);
  tensors["f16"] =
      torch::randn({3}, torch::kFloat32).to(torch::kFloat16);  // 6 bytes: misaligns what follows if unsorted.
  tensors["bf16"] = torch::randn({2, 3}, torch::kFloat32).to(torch::kBFloat16);
  tensors["i64"] = torch::tensor({INT64_MIN, int64_t{0}, INT64_MAX}, torch::kInt64);
  tensors["i32"] = torch::arange(-3, 4, torch::kInt32);
  tensors["i16"] = torch::arange(-5, 2, torch::kInt16);
  tensors["i8"] = torch::tensor({-128, 0, 127}, torch::kInt8);
  tensors["u8"] = torch::tensor({0, 7, 255}, torch::kUInt8);
  tensors["bool"] = torch::tensor({true, false, true}, torch::kBool);
  tensors["scalar"] = torch::tensor(2.5, torch::kFloat32);
  tensors["empty"] = torch::zeros({0, 4}, torch::kFloat32);
  tensors["transposed"] = torch::arange(6, torch::kFloat32).reshape({2, 3}).t();  // Non-contiguous input.
  return tensors;
}

void ExpectSameTensors(const TensorMap& expected, const TensorMap& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (const auto& [name, tensor] : expected) {
    const auto it = actual.find(name);
    ASSERT_NE(it, actual.end()) << name;
    EXPECT_EQ(it->second.scalar_type(), tensor.scalar_type()) << name;
    EXPECT_EQ(it->second.sizes(), tensor.sizes()) << name;
    EXPECT_TRUE(it->second.device().is_cpu()) << name;
    EXPECT_TRUE(torch::equal(it->second, tensor.contiguous())) << name;
  }
}

TEST_F(SafetensorsTest, RoundTripsEveryDtype) {
  const TensorMap tensors = OneOfEachDtype();
  const SafetensorsMetadata metadata = {{"format", "pt"}, {"note", "h\xc3\xa9"}};
  ASSERT_TRUE(WriteSafetensors(Path(), tensors, metadata).ok());
  SafetensorsMetadata read_metadata;
  absl::StatusOr<TensorMap> read = ReadSafetensors(Path(), &read_metadata);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectSameTensors(tensors, *read);
  EXPECT_EQ(read_metadata, metadata);

  absl::StatusOr<std::string> bytes = SerializeSafetensors(tensors, metadata);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, *ReadFile(Path(), 1 << 20)) << "WriteSafetensors and SerializeSafetensors differ";
  absl::StatusOr<TensorMap> parsed = ParseSafetensors(*bytes, "buffer");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ExpectSameTensors(tensors, *parsed);
}

TEST_F(SafetensorsTest, HeaderLooksLikeThePythonLibrarysAndKeepsDataAligned) {
  absl::StatusOr<std::string> bytes = SerializeSafetensors(OneOfEachDtype(), {{"format", "pt"}});
  ASSERT_TRUE(bytes.ok());
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const std::string header = bytes->substr(8, n);
  EXPECT_EQ(header.front(), '{');
  EXPECT_NE(header.find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos) << header;
  const nlohmann::json json = nlohmann::json::parse(header);  // Trailing spaces are valid JSON whitespace.
  std::string previous;
  uint64_t covered = 0;
  for (const auto& [name, desc] : json.items()) {
    EXPECT_LT(previous, name) << "keys must be sorted";
    previous = name;
    if (name == "__metadata__") continue;
    const uint64_t begin = desc["data_offsets"][0];
    const uint64_t end = desc["data_offsets"][1];
    covered += end - begin;
    const int elem = desc["dtype"] == "F64" || desc["dtype"] == "I64"                              ? 8
                     : desc["dtype"] == "F32" || desc["dtype"] == "I32"                            ? 4
                     : desc["dtype"] == "F16" || desc["dtype"] == "BF16" || desc["dtype"] == "I16" ? 2
                                                                                                   : 1;
    EXPECT_EQ((8 + n + begin) % elem, 0u) << name << " is misaligned";
  }
  EXPECT_EQ(8 + n + covered, bytes->size()) << "data section must hold exactly the tensors";
}

TEST_F(SafetensorsTest, TensorsAliasTheMappingAndOutliveTheReader) {
  TensorMap tensors = {{"w", torch::arange(1024, torch::kFloat32)}};
  ASSERT_TRUE(WriteSafetensors(Path(), tensors).ok());
  torch::Tensor w;
  {
    absl::StatusOr<TensorMap> read = ReadSafetensors(Path());
    ASSERT_TRUE(read.ok()) << read.status();
    w = read->at("w");
  }
  EXPECT_TRUE(torch::equal(w, tensors["w"]));
  EXPECT_TRUE(IsInsideMappingOf(w.data_ptr(), Path())) << "tensor was copied instead of aliasing the file";
  // Copy-on-write mapping: in-place ops work and do not touch the file.
  w.mul_(2);
  EXPECT_EQ(w[3].item<float>(), 6.0f);
  absl::StatusOr<TensorMap> again = ReadSafetensors(Path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->at("w")[3].item<float>(), 3.0f);
}

TEST_F(SafetensorsTest, UnalignedDataIsCopiedCorrectly) {
  // Header of odd length puts the data section at an odd address; offset 1 misaligns further.
  std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[1,9]},"b":{"dtype":"I64","shape":[1],"data_offsets":[9,17]}})";
  if (header.size() % 2 == 0) header += " ";
  int64_t big = 0x0102030405060708;
  const std::string data = "x" + Floats({1.5f, -2.25f}) + std::string(reinterpret_cast<const char*>(&big), 8);
  absl::StatusOr<TensorMap> read = ReadBytes(MakeSafetensors(header, data));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->at("a")[0].item<float>(), 1.5f);
  EXPECT_EQ(read->at("a")[1].item<float>(), -2.25f);
  EXPECT_EQ(read->at("b")[0].item<int64_t>(), big);
}

TEST_F(SafetensorsTest, RejectsBadFilesNamingThem) {
  const std::string path = Path();
  const std::string good_header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string good_data = Floats({1, 2});
  ASSERT_TRUE(ReadBytes(MakeSafetensors(good_header, good_data)).ok());

  // Too short for the length field, length beyond the file, length beyond the limit.
  EXPECT_ERROR(ReadBytes("abc"), absl::StatusCode::kDataLoss, path);
  std::string long_claim = MakeSafetensors(good_header, good_data);
  const uint64_t claim = long_claim.size();
  std::memcpy(long_claim.data(), &claim, 8);
  EXPECT_ERROR(ReadBytes(long_claim), absl::StatusCode::kDataLoss, path + ": invalid safetensors file: header length");
  const uint64_t huge = uint64_t{1} << 62;
  std::memcpy(long_claim.data(), &huge, 8);
  EXPECT_ERROR(ReadBytes(long_claim), absl::StatusCode::kInvalidArgument, "exceeds the limit");

  // Truncated data section.
  EXPECT_ERROR(ReadBytes(MakeSafetensors(good_header, good_data.substr(0, 5))), absl::StatusCode::kInvalidArgument,
               "outside the data section of 5 bytes");
  // Offsets out of range, reversed, or not matching the shape.
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "outside the data section");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "outside the data section");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "needs 12 bytes but data_offsets [0, 8) span 8");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "data_offsets");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "data_offsets");
  // Shapes: overflow of the element count or byte count, negative or non-integer dims.
  EXPECT_ERROR(ReadBytes(MakeSafetensors(
                   R"({"a":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,8]}})",
                   good_data)),
               absl::StatusCode::kInvalidArgument, "overflows");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})",
                                         good_data)),
               absl::StatusCode::kInvalidArgument, "overflows");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "non-negative");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "non-negative integers");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "must be an array");
  // Header syntax and structure.
  EXPECT_ERROR(ReadBytes(MakeSafetensors("{not json}", good_data)), absl::StatusCode::kInvalidArgument,
               path + ": invalid safetensors file: header is not valid JSON");
  EXPECT_ERROR(ReadBytes(MakeSafetensors("[1,2]", good_data)), absl::StatusCode::kInvalidArgument, "start with '{'");
  EXPECT_ERROR(ReadBytes(MakeSafetensors("", good_data)), absl::StatusCode::kInvalidArgument, "start with '{'");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":5})", good_data)), absl::StatusCode::kInvalidArgument,
               "not an object");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F32","shape":[2]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "needs \"dtype\", \"shape\" and \"data_offsets\"");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "unsupported dtype \"F8_E4M3\"");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"a":{"dtype":7,"shape":[8],"data_offsets":[0,8]}})", good_data)),
               absl::StatusCode::kInvalidArgument, "\"dtype\" must be a string");
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"__metadata__":{"k":1}})", "")), absl::StatusCode::kInvalidArgument,
               "must be a string");
  // Bytes that are not valid bools.
  EXPECT_ERROR(ReadBytes(MakeSafetensors(R"({"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", "\x01\x02")),
               absl::StatusCode::kInvalidArgument, "BOOL byte 1 is 2");
  // Missing file.
  EXPECT_ERROR(ReadSafetensors(dir_ + "/missing.safetensors"), absl::StatusCode::kNotFound, "missing.safetensors");
  EXPECT_ERROR(ReadSafetensors(dir_), absl::StatusCode::kInvalidArgument, "not a regular file");
}

TEST_F(SafetensorsTest, DeeplyNestedHeaderValuesAreAnErrorNotAStackOverflow) {
  // A hostile header may nest a value a million levels deep (2 MB of brackets, well under the
  // header limit); printing it into the error message once recursed that deep.
  constexpr int kDepth = 1000000;
  for (const char* field : {"data_offsets", "shape"}) {
    std::string header = std::string(R"({"a":{"dtype":"F32",)");
    if (std::string(field) == "shape") {
      header += R"("data_offsets":[0,8],"shape":)";
    } else {
      header += R"("shape":[2],"data_offsets":)";
    }
    header += std::string(kDepth, '[') + std::string(kDepth, ']') + "}}";
    EXPECT_ERROR(ReadBytes(MakeSafetensors(header, Floats({1, 2}))), absl::StatusCode::kInvalidArgument, "nested");
  }
}

TEST_F(SafetensorsTest, EveryTruncationAndByteFlipEndsInAStatus) {
  absl::StatusOr<std::string> bytes = SerializeSafetensors(OneOfEachDtype());
  ASSERT_TRUE(bytes.ok());
  for (size_t cut = 0; cut < bytes->size(); ++cut) {
    EXPECT_FALSE(ParseSafetensors(bytes->substr(0, cut), "cut").ok()) << cut;
  }
  uint64_t n = 0;
  std::memcpy(&n, bytes->data(), 8);
  for (size_t i = 0; i < 8 + n; ++i) {
    for (char c : {'\0', '9', '"', '-', '{', ']', '\xff'}) {
      std::string bad = *bytes;
      bad[i] = c;
      (void)ParseSafetensors(bad, "flip");  // Must not crash; may or may not parse.
    }
  }
}

TEST_F(SafetensorsTest, WriterRejectsWhatItCannotRepresent) {
  EXPECT_ERROR(WriteSafetensors(Path(), {{"c", torch::zeros({2}, torch::kComplexFloat)}}),
               absl::StatusCode::kInvalidArgument, "tensor \"c\"");
  EXPECT_ERROR(WriteSafetensors(Path(), {{"__metadata__", torch::zeros({2})}}), absl::StatusCode::kInvalidArgument,
               "__metadata__");
  EXPECT_ERROR(WriteSafetensors(Path(), {{"u", torch::Tensor()}}), absl::StatusCode::kInvalidArgument, "undefined");
  EXPECT_FALSE(WriteSafetensors(dir_ + "/no/such/dir/x.safetensors", {{"a", torch::zeros({2})}}).ok());
}

TEST_F(SafetensorsTest, WriteReplacesAnExistingFileAtomically) {
  ASSERT_TRUE(WriteSafetensors(Path(), {{"a", torch::zeros({2})}}).ok());
  ASSERT_TRUE(WriteSafetensors(Path(), {{"b", torch::ones({3})}}).ok());
  absl::StatusOr<TensorMap> read = ReadSafetensors(Path());
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->count("a"), 0u);
  EXPECT_TRUE(torch::equal(read->at("b"), torch::ones({3})));
}

}  // namespace
}  // namespace vqd::io
