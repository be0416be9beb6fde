// Fuzzes ParseTorchBin, ParseTorchBinStateDicts (training checkpoints: "model" and "ema" of the
// top-level dict) and ParseTorchBinTensor (io/torch_bin.h) on the same input. Two input forms:
//  - the bytes of a torch.save zip checkpoint, as they are (the zip structure is fuzzed; zip CRCs
//    make most mutations of the records' contents fail early);
//  - "PKL\n" or "PKLZ\n" followed by parts separated by "\n=====\n": the first part is data.pkl,
//    the i-th further part is the record data/<i-1>. The target zips them with libtorch's own
//    writer (deflated with "PKLZ"), so mutations reach the pickle machine and the tensor rebuilding
//    with valid CRCs.
// Accepted checkpoints must yield defined, contiguous CPU tensors whose every byte is readable.
#include <caffe2/serialize/inline_container.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "io/torch_bin.h"

namespace {

constexpr std::string_view kSeparator = "\n=====\n";

std::string ZipParts(std::string_view parts, bool compress) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&out](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  size_t pos = 0;
  for (int index = -1; pos <= parts.size(); ++index) {
    const size_t end = parts.find(kSeparator, pos);
    const std::string_view part = parts.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? parts.size() + 1 : end + kSeparator.size();
    const std::string name = index < 0 ? "data.pkl" : "data/" + std::to_string(index);
    writer.writeRecord(name, part.data(), part.size(), compress);
  }
  writer.writeEndOfFile();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string zipped;
  for (const auto& [prefix, compress] : {std::pair<std::string_view, bool>{"PKL\n", false}, {"PKLZ\n", true}}) {
    if (bytes.substr(0, prefix.size()) == prefix) {
      zipped = ZipParts(bytes.substr(prefix.size()), compress);
      bytes = zipped;
      break;
    }
  }
  uint64_t sum = 0;
  auto check = [&](const std::string& name, const torch::Tensor& t) {
    VQD_FUZZ_CHECK(t.defined(), "tensor %s is undefined", name.c_str());
    VQD_FUZZ_CHECK(t.device().is_cpu() && t.is_contiguous(), "tensor %s is not a contiguous CPU tensor", name.c_str());
    VQD_FUZZ_CHECK(!t.requires_grad(), "tensor %s requires grad", name.c_str());
    const auto* p = static_cast<const uint8_t*>(t.data_ptr());
    const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
    for (size_t i = 0; i < n; ++i) sum += p[i];
    if (t.scalar_type() == torch::kBool) {
      for (size_t i = 0; i < n; ++i) VQD_FUZZ_CHECK(p[i] <= 1, "bool tensor %s holds %d", name.c_str(), p[i]);
    }
    if (vqd::fuzz::Verbose()) {
      std::fprintf(stderr, "  %s: %s %s\n", name.c_str(), c10::toString(t.scalar_type()), c10::str(t.sizes()).c_str());
    }
  };
  absl::StatusOr<vqd::io::TensorMap> tensors = vqd::io::ParseTorchBin(bytes, "fuzz.bin");
  if (vqd::fuzz::Verbose()) std::fprintf(stderr, "ParseTorchBin: %s\n", tensors.status().ToString().c_str());
  if (tensors.ok()) {
    for (const auto& [name, t] : *tensors) check(name, t);
  }
  auto dicts = vqd::io::ParseTorchBinStateDicts(bytes, "fuzz.pth", {{"model", {}}, {"ema", {"transformer."}}});
  if (vqd::fuzz::Verbose()) std::fprintf(stderr, "ParseTorchBinStateDicts: %s\n", dicts.status().ToString().c_str());
  if (dicts.ok()) {
    for (const auto& [key, dict] : *dicts) {
      for (const auto& [name, t] : dict) check(key + "/" + name, t);
    }
  }
  absl::StatusOr<torch::Tensor> tensor = vqd::io::ParseTorchBinTensor(bytes, "fuzz.pt");
  if (tensor.ok()) check("(root)", *tensor);
  volatile uint64_t sink = sum;
  (void)sink;
  return 0;
}
