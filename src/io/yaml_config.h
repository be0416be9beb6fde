// YAML config files (the official VQ-Diffusion and Taming configs) read into the same typed access
// as the JSON configs. Scalars are typed as PyYAML's default resolver types them, since PyYAML is
// what reads these files officially: `True`, `yes` and `on` are booleans, `1.0e-06` is a float but
// `1e-6` (no dot) is a string, `~` and an empty value are null. Quoted scalars are strings.
// `!!python/tuple` sequences (what yaml.dump writes for tuples) are read as lists. Anchors are
// ignored; aliases, other tags and several documents in one file are refused, so a hostile file
// cannot make the reader expand references without bound.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "io/json_config.h"

namespace vqd::io {

inline constexpr uint64_t kMaxYamlFileBytes = 4ull << 20;

// Reads `path`; its top level must be a mapping.
absl::StatusOr<JsonConfig> LoadYamlConfig(const std::string& path);
// Parses `text`; `path_for_errors` names it in messages (with line and column of a syntax error).
absl::StatusOr<JsonConfig> ParseYamlConfig(std::string_view text, std::string path_for_errors);

}  // namespace vqd::io
