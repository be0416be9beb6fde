// Helpers shared by the io tests: scratch folders, the parity data location, status matchers and a
// tiny pickle writer for building hostile or hand-made checkpoints.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "common/scratch_dirs.h"

namespace vqd::io::testing_util {

// A fresh folder under the test temp dir, removed at exit.
inline std::string MakeTempDir() {
  std::string base = ::testing::TempDir();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string pattern = base + "/vqd_io_XXXXXX";
  const char* dir = ::mkdtemp(pattern.data());
  EXPECT_NE(dir, nullptr) << "mkdtemp failed for " << pattern;
  if (dir != nullptr) vqd::testing::ScratchDirs::Get().Add(pattern);
  return pattern;
}

// Folder of the shared parity data (env VQD_PARITY_DIR overrides the compiled-in default), or ""
// when it does not exist.
inline std::string ParityDir() {
  const char* env = std::getenv("VQD_PARITY_DIR");
  std::string dir = env != nullptr && *env != '\0' ? env : VQD_PARITY_DIR;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return "";
  return dir;
}

#define VQD_SKIP_WITHOUT_PARITY(dir)                                                              \
  const std::string dir = ::vqd::io::testing_util::ParityDir();                                   \
  if (dir.empty()) {                                                                              \
    GTEST_SKIP() << "\n*** PARITY DATA NOT FOUND: set VQD_PARITY_DIR (default " << VQD_PARITY_DIR \
                 << "). This test compares against reference files and did NOT run. ***\n";       \
  }

// Expects `status_or_result` (a Status or StatusOr) to fail with `code` and a message containing `text`.
#define EXPECT_ERROR(expr, expected_code, expected_text)                                     \
  do {                                                                                       \
    const ::absl::Status vqd_st_ = ::vqd::io::testing_util::StatusOf(expr);                  \
    EXPECT_EQ(vqd_st_.code(), expected_code) << vqd_st_;                                     \
    EXPECT_TRUE(::absl::StrContains(vqd_st_.message(), expected_text))                       \
        << "message: " << vqd_st_.message() << "\nexpected to contain: " << (expected_text); \
  } while (0)

inline absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& value) {
  return value.status();
}

// Emits pickle opcodes (protocol 2 subset plus a few of 4).
class PickleWriter {
 public:
  PickleWriter& Proto(int version) { return Op(0x80).Byte(version); }
  PickleWriter& Mark() { return Op('('); }
  PickleWriter& Stop() { return Op('.'); }
  PickleWriter& None() { return Op('N'); }
  PickleWriter& Bool(bool b) { return Op(b ? 0x88 : 0x89); }
  PickleWriter& Int(int64_t v) {
    if (v >= 0 && v < 256) return Op('K').Byte(static_cast<int>(v));
    if (v >= 0 && v < 65536) return Op('M').Le(static_cast<uint64_t>(v), 2);
    if (v >= INT32_MIN && v <= INT32_MAX) return Op('J').Le(static_cast<uint64_t>(v), 4);
    return Op(0x8a).Byte(8).Le(static_cast<uint64_t>(v), 8);  // LONG1
  }
  PickleWriter& Float(double v) {  // BINFLOAT: 8 bytes, big-endian
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(bits));
    Op('G');
    for (int i = 7; i >= 0; --i) Byte(static_cast<int>((bits >> (8 * i)) & 0xFF));
    return *this;
  }
  PickleWriter& Str(std::string_view s) { return Op('X').Le(s.size(), 4).Raw(s); }
  PickleWriter& ShortStr(std::string_view s) { return Op(0x8c).Byte(static_cast<int>(s.size())).Raw(s); }
  PickleWriter& Global(std::string_view module, std::string_view name) {
    return Op('c').Raw(module).Raw("\n").Raw(name).Raw("\n");
  }
  PickleWriter& EmptyTuple() { return Op(')'); }
  PickleWriter& EmptyList() { return Op(']'); }
  PickleWriter& EmptyDict() { return Op('}'); }
  PickleWriter& Tuple() { return Op('t'); }
  PickleWriter& TupleN(int n) { return Op(0x84 + n); }
  PickleWriter& Reduce() { return Op('R'); }
  PickleWriter& Build() { return Op('b'); }
  PickleWriter& BinPersId() { return Op('Q'); }
  PickleWriter& SetItem() { return Op('s'); }
  PickleWriter& SetItems() { return Op('u'); }
  PickleWriter& Append() { return Op('a'); }
  PickleWriter& Appends() { return Op('e'); }
  PickleWriter& Put(int index) { return Op('q').Byte(index); }
  PickleWriter& Get(int index) { return Op('h').Byte(index); }
  PickleWriter& Memoize() { return Op(0x94); }
  PickleWriter& Raw(std::string_view s) {
    bytes_.append(s.data(), s.size());
    return *this;
  }
  PickleWriter& Op(int op) { return Byte(op); }
  PickleWriter& Byte(int b) {
    bytes_.push_back(static_cast<char>(b));
    return *this;
  }
  PickleWriter& Le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) Byte(static_cast<int>((v >> (8 * i)) & 0xFF));
    return *this;
  }

  // torch._utils._rebuild_tensor_v2(('storage', torch.<storage_type>, key, 'cpu', numel), offset, size, stride, False,
  // OrderedDict())
  PickleWriter& Tensor(std::string_view storage_type, std::string_view key, int64_t numel, int64_t offset,
                       std::initializer_list<int64_t> size, std::initializer_list<int64_t> stride) {
    Global("torch._utils", "_rebuild_tensor_v2").Mark();
    Mark().Str("storage").Global("torch", storage_type).Str(key).Str("cpu").Int(numel).Tuple().BinPersId();
    Int(offset);
    Mark();
    for (int64_t s : size) Int(s);
    Tuple().Mark();
    for (int64_t s : stride) Int(s);
    Tuple().Bool(false).Global("collections", "OrderedDict").EmptyTuple().Reduce();
    return Tuple().Reduce();
  }

  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace vqd::io::testing_util
