// Loads a file's tensors into a module tree by name, checking every expected tensor by name and
// shape first so that a wrong or partial checkpoint fails with one message listing every problem.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "io/tensor_map.h"

namespace vqd::nn {

struct LoadOptions {
  std::string component;  // "transformer", used in messages
  std::string file;       // the weights file, used in messages
  // Maps a key as stored in the file to the module's key (legacy names); identity when empty.
  std::function<std::string(const std::string&)> rename;
  // Keys the file may carry that the module does not need (old buffers such as position_ids).
  std::vector<std::string> ignored_keys;
};

// Copies `weights` into `module`'s parameters and buffers (converting dtype and device). Fails,
// changing nothing, if a tensor is missing, unexpected or of the wrong shape. Each tensor is dropped
// as soon as it is copied: pass the map by std::move and the file's tensors (pages of a mapped file,
// or buffers) are freed one by one, so loading never holds the weights twice.
absl::Status LoadStateDict(torch::nn::Module& module, io::TensorMap weights, const LoadOptions& options);

// The checks of LoadStateDict alone: every tensor the module expects is present with its shape and
// nothing else is. Works on a module built on the meta device (no memory), e.g. to check a
// converted checkpoint before writing it.
absl::Status CheckStateDict(const torch::nn::Module& module, const io::TensorMap& weights, const LoadOptions& options);

// The module's parameters and buffers as a name -> tensor map (the keys diffusers would save).
io::TensorMap ModuleStateDict(const torch::nn::Module& module);

// Number of parameters (elements) of a module tree.
int64_t CountParameters(const torch::nn::Module& module);

}  // namespace vqd::nn
