#include "io/file_util.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "test_util.h"

namespace vqd::io {
namespace {

// Names in `dir` (to spot leftover temporary files).
std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(d);
  }
  return names;
}

TEST(FileUtil, WriteThenReadRoundTrips) {
  const std::string dir = testing_util::MakeTempDir();
  const std::string path = dir + "/f.bin";
  const std::string bytes("a\0b\xff", 4);
  ASSERT_TRUE(WriteFile(path, bytes).ok());
  EXPECT_EQ(*ReadFile(path, 100), bytes);
  EXPECT_EQ(*FileSize(path), 4u);
  EXPECT_TRUE(IsRegularFile(path));
  EXPECT_FALSE(IsRegularFile(dir));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  ASSERT_TRUE(WriteFileParts(path, {"new ", "", "content"}).ok());
  EXPECT_EQ(*ReadFile(path, 100), "new content");
  EXPECT_EQ(List(dir), std::vector<std::string>{"f.bin"}) << "temporary files left behind";
  ASSERT_TRUE(WriteFile(path, "").ok());
  EXPECT_EQ(*ReadFile(path, 0), "");
}

TEST(FileUtil, ErrorsNameTheFile) {
  const std::string dir = testing_util::MakeTempDir();
  ASSERT_TRUE(WriteFile(dir + "/f", "0123456789").ok());
  EXPECT_ERROR(ReadFile(dir + "/f", 9), absl::StatusCode::kInvalidArgument,
               dir + "/f is 10 bytes, more than the limit of 9");
  EXPECT_ERROR(ReadFile(dir + "/nope", 9), absl::StatusCode::kNotFound, dir + "/nope");
  EXPECT_ERROR(ReadFile(dir, 9), absl::StatusCode::kInvalidArgument, "not a regular file");
  EXPECT_ERROR(FileSize(dir + "/nope"), absl::StatusCode::kNotFound, "nope");
  EXPECT_ERROR(WriteFile(dir + "/no/such/dir/f", "x"), absl::StatusCode::kNotFound, "no/such/dir/f");
  EXPECT_EQ(List(dir), std::vector<std::string>{"f"});
}

}  // namespace
}  // namespace vqd::io
