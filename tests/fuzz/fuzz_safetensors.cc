// Fuzzes ParseSafetensors (io/safetensors.h) with the input as the file's bytes. Accepted files must
// yield defined, contiguous CPU tensors whose every byte is readable (summed below, so that ASan
// sees each access), and must survive a round trip through SerializeSafetensors unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "io/safetensors.h"

namespace {

std::string_view TensorBytes(const torch::Tensor& t) {
  return {static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * t.element_size()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  vqd::io::SafetensorsMetadata metadata;
  absl::StatusOr<vqd::io::TensorMap> tensors = vqd::io::ParseSafetensors(bytes, "fuzz.safetensors", &metadata);
  if (vqd::fuzz::Verbose()) std::fprintf(stderr, "ParseSafetensors: %s\n", tensors.status().ToString().c_str());
  if (!tensors.ok()) return 0;

  uint64_t sum = 0;
  for (const auto& [name, t] : *tensors) {
    VQD_FUZZ_CHECK(t.defined(), "tensor %s is undefined", name.c_str());
    VQD_FUZZ_CHECK(t.device().is_cpu() && t.is_contiguous(), "tensor %s is not a contiguous CPU tensor", name.c_str());
    const std::string_view raw = TensorBytes(t);
    for (const char c : raw) sum += static_cast<uint8_t>(c);
    if (t.scalar_type() == torch::kBool) {
      for (const char c : raw) VQD_FUZZ_CHECK(static_cast<uint8_t>(c) <= 1, "bool tensor %s holds %d", name.c_str(), c);
    }
  }

  // What was read writes back and reads again to the same tensors and metadata.
  absl::StatusOr<std::string> serialized = vqd::io::SerializeSafetensors(*tensors, metadata);
  VQD_FUZZ_CHECK(serialized.ok(), "cannot serialize what was parsed: %s", serialized.status().ToString().c_str());
  vqd::io::SafetensorsMetadata metadata2;
  absl::StatusOr<vqd::io::TensorMap> again = vqd::io::ParseSafetensors(*serialized, "roundtrip", &metadata2);
  VQD_FUZZ_CHECK(again.ok(), "cannot parse what was serialized: %s", again.status().ToString().c_str());
  VQD_FUZZ_CHECK(again->size() == tensors->size() && metadata2 == metadata, "round trip changed the tensor count or metadata");
  for (const auto& [name, t] : *tensors) {
    const auto it = again->find(name);
    VQD_FUZZ_CHECK(it != again->end(), "round trip lost tensor %s", name.c_str());
    const torch::Tensor& u = it->second;
    VQD_FUZZ_CHECK(u.scalar_type() == t.scalar_type() && u.sizes() == t.sizes() && TensorBytes(u) == TensorBytes(t),
                   "round trip changed tensor %s", name.c_str());
  }
  // Keep the sum alive so the reads above are not optimised away.
  volatile uint64_t sink = sum;
  (void)sink;
  return 0;
}
