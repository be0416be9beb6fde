// The built-in model the server uses when it is given none: the project's tiny random model,
// written once to a cache folder so that `vqd-server` runs out of the box.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace vqd::server {

// $VQD_CACHE_DIR, else $XDG_CACHE_HOME/vqd, else $HOME/.cache/vqd, else /tmp/vqd-cache.
std::string DefaultCacheDir();

// Returns <cache>/models/tiny-random, creating it (atomically, by rename) if needed.
absl::StatusOr<std::string> EnsureDefaultModel();

}  // namespace vqd::server
