// Fuzzes ParseYamlConfig (io/yaml_config.h), the reader of the official checkpoints' configs:
// any input must give a status, never a crash, a hang or unbounded memory; an accepted one must be
// a mapping whose values are reachable.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "fuzz_util.h"
#include "io/yaml_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<vqd::io::JsonConfig> config = vqd::io::ParseYamlConfig(text, "fuzz.yaml");
  if (vqd::fuzz::Verbose()) std::fprintf(stderr, "ParseYamlConfig: %s\n", config.status().ToString().c_str());
  if (!config.ok()) return 0;
  VQD_FUZZ_CHECK(config->json().is_object(), "accepted a YAML file whose top level is not a mapping");
  volatile size_t sink = config->json().dump().size();
  (void)sink;
  return 0;
}
