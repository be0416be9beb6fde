// The built-in model the server uses when it is given none: the trained demo model built into
// the binary (src/demo_model), written once to a cache folder so that `vqd-server` runs out of
// the box and answers prompts like "a red circle at the top left" with that picture.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace vqd::server {

// $VQD_CACHE_DIR, else $XDG_CACHE_HOME/vqd, else $HOME/.cache/vqd, else /tmp/vqd-cache.
std::string DefaultCacheDir();

// Returns <cache>/models/demo-<fingerprint>, writing it if needed (a rebuilt binary with a
// retrained model writes a new folder rather than serving a stale one).
absl::StatusOr<std::string> EnsureDefaultModel();

}  // namespace vqd::server
