#include "base/process_memory.h"

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace vqd {

int64_t ProcessStatusBytes(absl::string_view field) {
  std::ifstream in("/proc/self/status");
  const std::string prefix = absl::StrCat(field, ":");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, prefix)) {
      std::istringstream values(line.substr(prefix.size()));
      int64_t kib = -1;
      values >> kib;
      return kib < 0 ? -1 : kib * 1024;
    }
  }
  return -1;
}

}  // namespace vqd
