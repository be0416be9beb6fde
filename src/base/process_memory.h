// The process's own memory figures from /proc/self/status (Linux), for benchmarks and tests that
// measure resident memory.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace vqd {

// A kB field of /proc/self/status ("VmRSS", "VmHWM", ...) in bytes; -1 when absent or unreadable.
int64_t ProcessStatusBytes(absl::string_view field);

}  // namespace vqd
