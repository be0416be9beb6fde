// The files of the trained demo model (assets/demo-model), built into the binary by
// src/demo_model/CMakeLists.txt.
#pragma once

#include <string_view>

#include "absl/types/span.h"

namespace vqd::demo_model {

struct EmbeddedFile {
  const char* path;  // relative to the model directory, '/'-separated
  const char* begin;
  const char* end;

  std::string_view bytes() const { return {begin, static_cast<size_t>(end - begin)}; }
};

// Every file of the model directory, in path order.
absl::Span<const EmbeddedFile> Files();

// 16 hex digits of a SHA-256 over the files' names and digests: changes whenever they do.
std::string_view Fingerprint();

}  // namespace vqd::demo_model
