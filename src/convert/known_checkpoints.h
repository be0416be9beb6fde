// The checkpoints microsoft/VQ-Diffusion released, with what their README and inference script
// sample them with (spec official-checkpoints.md section 6.3). A conversion takes its defaults from
// here by file name; a file of another name gets the defaults of its kind (learned null or not).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace vqd::convert {

struct KnownCheckpoint {
  std::string name;  // file stem: coco_learnable for coco_learnable.pth
  std::string task;
  double guidance_scale = 1.0;
  double truncation_rate = 0.86;
  std::string defaults_source;  // where the defaults come from
};

const std::vector<KnownCheckpoint>& KnownCheckpoints();
// By file stem, case-sensitive as the release names them.
std::optional<KnownCheckpoint> FindKnownCheckpoint(const std::string& stem);

// The defaults of an unknown checkpoint: guidance 3.0 / truncation 1.0 with a learned text null
// (the COCO fine-tune), 1.5 / 0.94 with a learned null class row (imagenet_learnable), else no
// guidance and truncation 0.86 (every pretrained checkpoint's example).
KnownCheckpoint DefaultsByKind(bool text, bool learned_null);

}  // namespace vqd::convert
