// The official-layout small models of ../shared/parity/official (one per checkpoint family), the
// tensors the official code computed from them, and model directories converted from them with
// `vqd convert-official`'s library, made once per test process in its scratch folder.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "common/parity_data.h"
#include "io/tensor_map.h"

namespace vqd::testing {

// Whether <parity>/official exists.
bool HaveOfficialParity();

// Skips the current test with a loud message when the official parity data is missing.
#define VQD_REQUIRE_OFFICIAL_PARITY()                                                                   \
  do {                                                                                                  \
    if (!::vqd::testing::HaveOfficialParity()) {                                                        \
      std::fprintf(stderr, "\n*** OFFICIAL PARITY DATA MISSING: set VQD_PARITY_DIR or provide "         \
                           "../shared/parity/official; this test is SKIPPED, not passed ***\n\n");      \
      GTEST_SKIP() << "official parity data missing (../shared/parity/official)";                       \
    }                                                                                                   \
  } while (0)

// <parity>/official/<family>/<file>; family "text" or "imagenet".
std::string OfficialPath(const std::string& family, const std::string& file);
// <family>/goldens.safetensors (loaded once) and one tensor of it.
const io::TensorMap& OfficialGoldens(const std::string& family);
const torch::Tensor& OfficialGolden(const std::string& family, const std::string& name);
// <family>/meta.json.
const nlohmann::json& OfficialMeta(const std::string& family);

enum class OfficialModel {
  kText,          // text_small_learnable.pth: EMA weights, learned null
  kTextZeroShot,  // the same guided with CLIP("") (--zero-shot-null), as the *_pretrained ones are
  kTextNoEma,     // the training weights (--no-ema)
  kClass,         // imagenet_small.pth: EMA weights, mean-class null
};
// The converted directory (converted on first use; throws if the conversion fails).
const std::string& ConvertedOfficialModel(OfficialModel model);

}  // namespace vqd::testing
