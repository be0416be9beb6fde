// A tiny random model made by the project itself (vqd make-model --preset tiny), created once per
// test binary in the build folder, for tests that need a model but not the reference data. It
// lives in the process's scratch folder, which is removed when the process exits.
#pragma once

#include <string>

namespace vqd::testing {

// build/test-models/<pid>: created on first use, removed at exit.
const std::string& TestScratchDir();

// Path of the tiny random model directory (created on first use).
const std::string& TinyRandomModelDir();
// The small preset (64x64 images from a 16x16 grid, 1024 codes), for tests that need larger
// messages than the tiny model's (created on first use).
const std::string& SmallRandomModelDir();

}  // namespace vqd::testing
