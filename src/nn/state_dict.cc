#include "nn/state_dict.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/torch_util.h"

namespace vqd::nn {
namespace {

constexpr size_t kMaxListed = 12;  // problems listed per kind before "... and N more"

std::string ListProblems(const std::vector<std::string>& items) {
  std::vector<std::string> shown(items.begin(), items.begin() + std::min(items.size(), kMaxListed));
  std::string out = absl::StrJoin(shown, ", ");
  if (items.size() > kMaxListed) absl::StrAppend(&out, ", ... and ", items.size() - kMaxListed, " more");
  return out;
}

}  // namespace

io::TensorMap ModuleStateDict(const torch::nn::Module& module) {
  io::TensorMap out;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) out[item.key()] = item.value();
  for (const auto& item : module.named_buffers(/*recurse=*/true)) out[item.key()] = item.value();
  return out;
}

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) total += p.numel();
  return total;
}

namespace {

// Each module key's entry (file key and tensor) in the file's map.
using Provided = std::map<std::string, const io::TensorMap::value_type*>;

// Matches the file's tensors to the module's by name, listing every problem.
absl::Status MatchStateDict(const io::TensorMap& expected, const io::TensorMap& weights, const LoadOptions& options,
                            Provided* provided) {
  std::vector<std::string> unexpected, missing, mismatched;
  for (const auto& entry : weights) {
    const std::string& file_key = entry.first;
    if (std::find(options.ignored_keys.begin(), options.ignored_keys.end(), file_key) !=
        options.ignored_keys.end()) {
      continue;
    }
    const std::string key = options.rename ? options.rename(file_key) : file_key;
    if (expected.count(key) == 0) {
      unexpected.push_back(file_key);
      continue;
    }
    if (provided->count(key) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(options.component, " weights ", options.file,
                                                     ": tensor \"", key, "\" is stored twice (old and new name)"));
    }
    (*provided)[key] = &entry;
  }
  for (const auto& [key, target] : expected) {
    auto it = provided->find(key);
    if (it == provided->end()) {
      missing.push_back(key);
      continue;
    }
    const torch::Tensor& source = it->second->second;
    if (source.sizes() != target.sizes()) {
      mismatched.push_back(absl::StrCat(key, " expected ", ShapeString(target.sizes()), " got ",
                                        ShapeString(source.sizes())));
    } else if (source.is_floating_point() != target.is_floating_point()) {
      mismatched.push_back(absl::StrCat(key, " expected dtype ", DtypeName(target.scalar_type()), " got ",
                                        DtypeName(source.scalar_type())));
    }
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::vector<std::string> parts;
    if (!mismatched.empty()) parts.push_back(absl::StrCat(mismatched.size(), " with the wrong shape (", ListProblems(mismatched), ")"));
    if (!missing.empty()) parts.push_back(absl::StrCat(missing.size(), " missing (", ListProblems(missing), ")"));
    if (!unexpected.empty()) parts.push_back(absl::StrCat(unexpected.size(), " unexpected (", ListProblems(unexpected), ")"));
    return absl::InvalidArgumentError(absl::StrCat(options.component, " weights ", options.file,
                                                   " do not match the model config: tensors ",
                                                   absl::StrJoin(parts, "; ")));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckStateDict(const torch::nn::Module& module, const io::TensorMap& weights, const LoadOptions& options) {
  Provided provided;
  return MatchStateDict(ModuleStateDict(module), weights, options, &provided);
}

absl::Status LoadStateDict(torch::nn::Module& module, io::TensorMap weights, const LoadOptions& options) {
  io::TensorMap expected = ModuleStateDict(module);
  Provided provided;
  if (absl::Status s = MatchStateDict(expected, weights, options, &provided); !s.ok()) return s;
  return CatchTorch(absl::StrCat("copying ", options.component, " weights from ", options.file), [&] {
    torch::NoGradGuard no_grad;
    for (auto& [key, target] : expected) {
      const io::TensorMap::value_type* source = provided.at(key);
      target.copy_(source->second);
      // The last reference to a file tensor goes here (unless the caller kept the map): its mapped
      // pages or its buffer are freed before the next tensor is read.
      weights.erase(weights.find(source->first));  // not erase(key): the key lives in the node erased
    }
  });
}

}  // namespace vqd::nn
