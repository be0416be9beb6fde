#include "convert/known_checkpoints.h"

namespace vqd::convert {

const std::vector<KnownCheckpoint>& KnownCheckpoints() {
  static const std::vector<KnownCheckpoint> kKnown = {
      {"coco_pretrained", "text -> image, MSCOCO", 1.0, 0.86, "readme.md (truncation 0.86, no guidance)"},
      {"coco_learnable", "text -> image, MSCOCO, classifier-free fine-tuned", 3.0, 1.0, "readme.md (guidance 3.0, truncation 1.0)"},
      {"cub_pretrained", "text -> image, CUB-200 birds", 1.0, 0.86, "readme.md (generic text example)"},
      {"CC_pretrained", "text -> image, Conceptual Captions", 1.0, 0.86, "readme.md (generic text example)"},
      {"cc_learnable", "text -> image, Conceptual Captions, classifier-free fine-tuned", 3.0, 1.0,
       "not documented; coco_learnable's by analogy"},
      {"human_pretrained", "text -> image, LAION human", 1.0, 0.85, "the v1 repository's readme (truncation 0.85)"},
      {"imagenet_pretrained", "class -> image, ImageNet 256", 1.0, 0.86, "readme.md (label 407, truncation 0.86)"},
      {"imagenet_learnable", "class -> image, ImageNet 256, classifier-free fine-tuned", 1.5, 0.94,
       "readme.md (guidance 1.5, truncation 0.94)"},
  };
  return kKnown;
}

std::optional<KnownCheckpoint> FindKnownCheckpoint(const std::string& stem) {
  for (const KnownCheckpoint& k : KnownCheckpoints()) {
    if (k.name == stem) return k;
  }
  return std::nullopt;
}

KnownCheckpoint DefaultsByKind(bool text, bool learned_null) {
  if (learned_null && text) return {"", "text -> image", 3.0, 1.0, "a learned null embedding: coco_learnable's defaults"};
  if (learned_null) return {"", "class -> image", 1.5, 0.94, "a learned null class: imagenet_learnable's defaults"};
  return {"", text ? "text -> image" : "class -> image", 1.0, 0.86, "no learned null: the pretrained checkpoints' defaults"};
}

}  // namespace vqd::convert
