// PyTorch checkpoints written by torch.save (the zip format, default since 1.6): a zip archive with
// "<name>/data.pkl" (a pickled state dict) and one "<name>/data/<key>" record per storage. The
// pickle runs on our restricted machine (io/pickle_reader.h), which knows only OrderedDict, the
// tensor/parameter rebuild functions and storage types, so a hostile file cannot run code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>
#include <map>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "io/tensor_map.h"

namespace vqd::io {

struct TorchBinLimits {
  uint64_t max_pickle_bytes = 256ull << 20;
  size_t max_tensors = 1u << 20;
  // Non-contiguous tensors are copied; copies beyond the archive's storage bytes plus this slack are
  // refused (a stride-0 view of one element must not turn into gigabytes).
  uint64_t copy_slack_bytes = 64ull << 20;
};

// Reads a state dict (flat mapping of name -> tensor) from a torch.save zip file. Tensors are
// contiguous CPU tensors; tensors that shared a storage in the file share it here too.
absl::StatusOr<TensorMap> ReadTorchBin(const std::string& path, const TorchBinLimits& limits = {});

// Same over a buffer. `name_for_errors` stands in for the path in error messages.
absl::StatusOr<TensorMap> ParseTorchBin(std::string_view bytes, std::string_view name_for_errors,
                                        const TorchBinLimits& limits = {});

// What to take from a training checkpoint (torch.save of a dict holding state dicts next to epochs,
// optimizer state and the like): the state dict stored under `key` of the top-level dict, keeping
// only the entries whose names start with one of `prefixes` (every entry when empty).
struct StateDictSelection {
  std::string key;
  std::vector<std::string> prefixes;
};

// Reads the selected state dicts of a training checkpoint, by key; a key the checkpoint lacks is
// left out of the result, one whose value is not a dict of tensors is an error. Storages outside
// the selection are never read. Names outside the allow-list (an optimizer's or scheduler's state
// may pickle classes of its own) become inert values instead of errors: nothing is ever called, and
// such a value inside a selected state dict is an error like any other non-tensor.
absl::StatusOr<std::map<std::string, TensorMap>> ReadTorchBinStateDicts(const std::string& path,
                                                                        const std::vector<StateDictSelection>& selections,
                                                                        const TorchBinLimits& limits = {});
absl::StatusOr<std::map<std::string, TensorMap>> ParseTorchBinStateDicts(
    std::string_view bytes, std::string_view name_for_errors, const std::vector<StateDictSelection>& selections,
    const TorchBinLimits& limits = {});

// A file written by torch.save(tensor): one tensor, contiguous on the CPU.
absl::StatusOr<torch::Tensor> ReadTorchBinTensor(const std::string& path, const TorchBinLimits& limits = {});
absl::StatusOr<torch::Tensor> ParseTorchBinTensor(std::string_view bytes, std::string_view name_for_errors,
                                                  const TorchBinLimits& limits = {});

}  // namespace vqd::io
