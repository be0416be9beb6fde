#include "server/request_validation.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <optional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "pipeline/generate.h"
#include "server/condition_validation.h"

namespace vqd::server {
namespace {

absl::Status Invalid(absl::string_view field, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

// Valid UTF-8, no overlong forms or surrogates (protobuf's string check, repeated here so the
// message can say which field).
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (int k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

// init_image, strength and mask: each checked and decoded here, so that a bad one is the
// client's INVALID_ARGUMENT naming the field, before the request reaches a device.
absl::Status ValidateEdit(const vqdiffusion::v1::GenerateRequest& request, const pipeline::PipelineInfo& info,
                          engine::RequestParams* p) {
  if (request.init_image().empty()) {
    if (!request.mask().empty()) {
      return Invalid("mask", "needs init_image (the image whose unmasked part is kept)");
    }
    if (request.has_strength()) return Invalid("strength", "applies only with init_image");
    return absl::OkStatus();
  }
  auto edit = std::make_shared<pipeline::EditInput>();
  edit->strength = request.has_strength() ? request.strength() : 1.0f;
  if (absl::StatusOr<int64_t> chain = pipeline::EditChainLength(edit->strength, info); !chain.ok()) {
    return Invalid("strength", std::string(absl::StripPrefix(chain.status().message(), "strength ")));
  }
  absl::StatusOr<torch::Tensor> image = pipeline::EditImageFromPng(request.init_image(), info, "init_image");
  if (!image.ok()) return image.status();
  edit->image = *image;
  if (!request.mask().empty()) {
    absl::StatusOr<torch::Tensor> mask = pipeline::RegenerateMaskFromPng(request.mask(), info, "mask");
    if (!mask.ok()) return mask.status();
    edit->regenerate = *mask;
  }
  p->edit = std::move(edit);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<engine::RequestParams> ValidateGenerateRequest(const vqdiffusion::v1::GenerateRequest& request,
                                                              const ServiceLimits& limits,
                                                              const pipeline::PipelineInfo& info,
                                                              int64_t max_batch_rows) {
  engine::RequestParams p;
  if (static_cast<int64_t>(request.prompt().size()) > limits.max_prompt_bytes) {
    return Invalid("prompt", absl::StrCat("is ", request.prompt().size(), " bytes; at most ", limits.max_prompt_bytes,
                                          " bytes are allowed"));
  }
  if (!IsValidUtf8(request.prompt())) return Invalid("prompt", "is not valid UTF-8");
  p.prompt = request.prompt();
  if (absl::Status s = ValidateCondition(request, info, &p); !s.ok()) return s;
  if (absl::Status s = ValidateEdit(request, info, &p); !s.ok()) return s;

  const int64_t max_images = limits.max_images;
  p.num_images = request.has_num_images() ? static_cast<int64_t>(request.num_images()) : 1;
  if (p.num_images < 1 || p.num_images > max_images) {
    return Invalid("num_images", absl::StrCat("must be in [1, ", max_images, "], got ", p.num_images));
  }
  const int64_t max_steps = info.num_train_timesteps;
  p.time_stride = request.has_time_stride() ? static_cast<int64_t>(request.time_stride()) : 1;
  if (p.time_stride < 1 || p.time_stride > max_steps) {
    return Invalid("time_stride",
                   absl::StrCat("must be in [1, ", max_steps, "] (the model's schedule), got ", p.time_stride));
  }
  if (p.edit) {  // the edit's chain fixes the steps
    const int64_t chain = *pipeline::EditChainLength(p.edit->strength, info);
    absl::StatusOr<int64_t> steps = pipeline::StepsForStride(
        request.has_steps() ? std::optional<int64_t>(request.steps()) : std::nullopt, p.time_stride, info, chain);
    if (!steps.ok()) return Invalid("steps", std::string(absl::StripPrefix(steps.status().message(), "steps ")));
    p.steps = *steps;
  } else if (p.time_stride > 1) {
    p.steps = diffusion::StridedStepCount(max_steps, p.time_stride);
    if (request.has_steps() && static_cast<int64_t>(request.steps()) != p.steps) {
      return Invalid("steps", absl::StrCat("is ", request.steps(), " but time_stride ", p.time_stride, " visits ",
                                           p.steps, " timesteps of the ", max_steps,
                                           "-step schedule; leave steps unset or set it to ", p.steps));
    }
  } else {
    p.steps = request.has_steps() ? static_cast<int64_t>(request.steps()) : std::min<int64_t>(100, max_steps);
    if (p.steps < 1 || p.steps > max_steps) {
      return Invalid("steps", absl::StrCat("must be in [1, ", max_steps, "] (the model's schedule), got ", p.steps));
    }
  }
  switch (request.prior_rule()) {
    case vqdiffusion::v1::PRIOR_RULE_UNSPECIFIED: p.prior_rule = diffusion::PriorRule::kNone; break;
    case vqdiffusion::v1::PRIOR_RULE_UNIFORM: p.prior_rule = diffusion::PriorRule::kUniform; break;
    case vqdiffusion::v1::PRIOR_RULE_PURITY: p.prior_rule = diffusion::PriorRule::kPurity; break;
    default:
      return Invalid("prior_rule", absl::StrCat("must be PRIOR_RULE_UNSPECIFIED, PRIOR_RULE_UNIFORM or "
                                                "PRIOR_RULE_PURITY, got ", static_cast<int>(request.prior_rule())));
  }
  p.prior_weight = request.has_prior_weight() ? request.prior_weight() : 0.0f;
  if (absl::Status s = pipeline::CheckPrior(p.prior_rule, p.prior_weight); !s.ok()) {
    return Invalid("prior_weight", std::string(absl::StripPrefix(s.message(), "prior_weight ")));
  }
  p.guidance_scale = request.has_guidance_scale() ? request.guidance_scale() : info.default_guidance_scale;
  if (absl::Status s = pipeline::CheckGuidanceScale(p.guidance_scale, info); !s.ok()) {
    return Invalid("guidance_scale", std::string(absl::StripPrefix(s.message(), "guidance_scale ")));
  }
  p.truncation_rate = request.has_truncation_rate() ? request.truncation_rate() : info.default_truncation_rate;
  if (!(p.truncation_rate > 0.0f && p.truncation_rate <= 1.0f)) {
    return Invalid("truncation_rate", absl::StrCat("must be in (0, 1], got ", p.truncation_rate));
  }
  if (request.progress_interval() > static_cast<uint32_t>(limits.max_progress_interval)) {
    return Invalid("progress_interval", absl::StrCat("must be in [0, ", limits.max_progress_interval, "], got ",
                                                     request.progress_interval()));
  }
  p.progress_interval = request.progress_interval();
  if (request.preview_interval() > static_cast<uint32_t>(limits.max_progress_interval)) {
    return Invalid("preview_interval", absl::StrCat("must be in [0, ", limits.max_progress_interval, "], got ",
                                                    request.preview_interval()));
  }
  p.preview_interval = request.preview_interval();
  p.priority = request.priority();
  if (request.request_id().size() > static_cast<size_t>(limits.max_request_id_bytes)) {
    return Invalid("request_id", absl::StrCat("is ", request.request_id().size(), " bytes; at most ",
                                              limits.max_request_id_bytes, " are allowed"));
  }
  for (char c : request.request_id()) {
    if (c < 0x21 || c > 0x7e) return Invalid("request_id", "must be printable ASCII without spaces");
  }
  p.request_id = request.request_id().empty() ? NewRequestId() : request.request_id();
  p.seed = request.has_seed() ? request.seed() : NewSeed();
  if (p.rows() > max_batch_rows) {
    return Invalid("num_images", absl::StrCat(p.num_images, " images", p.guided() ? " with guidance" : "", " need ",
                                              p.rows(), " transformer rows per step; this server's batch holds ",
                                              max_batch_rows, " (use at most ",
                                              p.guided() ? max_batch_rows / 2 : max_batch_rows, " images)"));
  }
  return p;
}

namespace {
std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}
}  // namespace

std::string NewRequestId() { return absl::StrFormat("req-%016x", Rng()()); }

uint64_t NewSeed() { return Rng()() >> 1; }  // 63 bits: safe for every client language's integers

}  // namespace vqd::server
