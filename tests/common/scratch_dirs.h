// Folders a test process makes for itself, removed when that process exits: ctest runs many test
// processes, and each used to leave its model copies and temp folders behind. Header-only, so
// that tests without libtorch (the io tests) can use it too.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace vqd::testing {

class ScratchDirs {
 public:
  static ScratchDirs& Get() {
    static ScratchDirs dirs;
    return dirs;
  }
  // Removes `path` (recursively) at exit.
  void Add(std::string path) {
    std::lock_guard<std::mutex> lock(mu_);
    paths_.push_back(std::move(path));
  }
  ~ScratchDirs() {
    if (getpid() != owner_) return;  // a forked child leaves its parent's folders alone
    std::error_code ignored;
    for (const std::string& path : paths_) std::filesystem::remove_all(path, ignored);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> paths_;
  const pid_t owner_ = getpid();
};

}  // namespace vqd::testing
