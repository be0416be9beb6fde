// Converts an official microsoft/VQ-Diffusion training checkpoint (the released .pth files) into a
// model directory this server loads: the diffusers layout for the text family (which diffusers
// loads too), a class_transformer folder in the same style for the ImageNet family, plus
// vqd_model.json (the official sampler and the checkpoint's sampling defaults) and the
// checkpoint's own log schedules. The .pth is read with the project's restricted reader: nothing in
// it is executed, and only the state dicts needed are read.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace vqd::convert {

struct OfficialConversionOptions {
  std::string checkpoint;  // the .pth
  std::string config;      // the model YAML (config_text.yaml, coco_tune.yaml, config_imagenet.yaml, ...)
  std::string bpe;         // text family: bpe_simple_vocab_16e6.txt.gz or a CLIP merges.txt
  std::string out;         // the model directory to create
  // Override the files the config names (otherwise found next to it or above it).
  std::optional<std::string> vqgan_config;
  std::optional<std::string> shrink_table;
  // Official inference uses ckpt["ema"] for the transformer, CLIP, null embedding and schedules;
  // false takes them from ckpt["model"] (the training weights).
  bool use_ema = true;
  // Text family: guide with CLIP of the empty prompt even when the checkpoint has a learned null
  // embedding (the official learnable_cf=False); the directory then looks like a *_pretrained one.
  bool zero_shot_null = false;
  // Override the defaults recorded for requests that leave them unset.
  std::optional<double> guidance_scale;
  std::optional<double> truncation_rate;
};

struct OfficialConversionReport {
  std::string family;  // "text" or "class"
  std::string checkpoint_name;
  std::string weights_from;  // "ema" or "model"
  bool learned_null = false;
  int64_t num_layers = 0, width = 0, heads = 0, codes = 0, grid_height = 0, grid_width = 0;
  int64_t num_classes = 0;  // class family
  int64_t transformer_parameters = 0;
  double guidance_scale = 1.0, truncation_rate = 1.0;
  std::string defaults_source;
  std::string Summary() const;
};

absl::StatusOr<OfficialConversionReport> ConvertOfficialCheckpoint(const OfficialConversionOptions& options);

}  // namespace vqd::convert
