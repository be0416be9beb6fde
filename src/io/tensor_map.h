// The in-memory form of a checkpoint: state_dict key -> CPU tensor. std::map keeps keys sorted, so
// iteration order (and anything written from it) is deterministic.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>

namespace vqd::io {

using TensorMap = std::map<std::string, torch::Tensor>;

}  // namespace vqd::io
