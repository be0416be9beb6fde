// Precompiled for every target: libtorch's headers dominate the project's compile time.
#pragma once

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
