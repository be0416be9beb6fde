// Fuzzes ValidateGenerateRequest (server/request_validation.h): the input is a serialized
// vqdiffusion.v1.GenerateRequest (inputs protobuf rejects are skipped). The pipeline is described
// with ITHQ's numbers (32x32 token grid, 4096 codes, 100 timesteps) and the service's default
// limits. An accepted request must satisfy every documented range; a violation traps.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "fuzz_util.h"
#include "server/request_validation.h"

namespace {

vqd::pipeline::PipelineInfo IthqInfo() {
  vqd::pipeline::PipelineInfo info;
  info.model_name = "fuzz-ithq";
  info.grid_height = 32;
  info.grid_width = 32;
  info.num_latent_pixels = 32 * 32;
  info.codebook_size = 4096;
  info.num_train_timesteps = 100;
  info.image_height = 256;
  info.image_width = 256;
  info.max_prompt_tokens = 77;
  return info;
}

bool PrintableAscii(const std::string& s) {
  for (const char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

void CheckAccepted(const vqdiffusion::v1::GenerateRequest& request, const vqd::server::ServiceLimits& limits,
                   const vqd::pipeline::PipelineInfo& info, int64_t max_batch_rows,
                   const vqd::engine::RequestParams& p) {
  VQD_FUZZ_CHECK(p.steps >= 1 && p.steps <= info.num_train_timesteps, "steps %lld", static_cast<long long>(p.steps));
  VQD_FUZZ_CHECK(p.num_images >= 1 && p.num_images <= limits.max_images, "num_images %lld",
                 static_cast<long long>(p.num_images));
  VQD_FUZZ_CHECK(p.truncation_rate > 0.0f && p.truncation_rate <= 1.0f, "truncation_rate %g",
                 static_cast<double>(p.truncation_rate));
  VQD_FUZZ_CHECK(std::isfinite(p.guidance_scale) && p.guidance_scale >= 0.0f, "guidance_scale %g",
                 static_cast<double>(p.guidance_scale));
  VQD_FUZZ_CHECK(p.rows() >= 1 && p.rows() <= max_batch_rows, "rows %lld with max_batch_rows %lld",
                 static_cast<long long>(p.rows()), static_cast<long long>(max_batch_rows));
  VQD_FUZZ_CHECK(static_cast<int64_t>(p.prompt.size()) <= limits.max_prompt_bytes, "prompt of %zu bytes",
                 p.prompt.size());
  VQD_FUZZ_CHECK(p.prompt == request.prompt(), "prompt changed");
  VQD_FUZZ_CHECK(p.progress_interval >= 0 && p.progress_interval <= limits.max_progress_interval,
                 "progress_interval %lld", static_cast<long long>(p.progress_interval));
  VQD_FUZZ_CHECK(p.priority == request.priority(), "priority changed");
  VQD_FUZZ_CHECK(!p.request_id.empty() && static_cast<int64_t>(p.request_id.size()) <= limits.max_request_id_bytes &&
                     PrintableAscii(p.request_id),
                 "request_id of %zu bytes", p.request_id.size());
  if (!request.request_id().empty()) VQD_FUZZ_CHECK(p.request_id == request.request_id(), "request_id changed");
  if (request.has_seed()) VQD_FUZZ_CHECK(p.seed == request.seed(), "seed changed");
  // Unset fields take the documented defaults.
  if (!request.has_num_images()) VQD_FUZZ_CHECK(p.num_images == 1, "default num_images");
  // The samplers' and editing fields: each accepted value in its range, and the steps they imply.
  VQD_FUZZ_CHECK(p.time_stride >= 1 && p.time_stride <= info.num_train_timesteps, "time_stride %lld",
                 static_cast<long long>(p.time_stride));
  VQD_FUZZ_CHECK(std::isfinite(p.prior_weight) && p.prior_weight >= 0.0f &&
                     (p.prior_weight == 0.0f || p.prior_rule == vqd::diffusion::PriorRule::kPurity),
                 "prior_weight %g", static_cast<double>(p.prior_weight));
  VQD_FUZZ_CHECK(p.preview_interval >= 0 && p.preview_interval <= limits.max_progress_interval,
                 "preview_interval %lld", static_cast<long long>(p.preview_interval));
  VQD_FUZZ_CHECK((p.edit != nullptr) == !request.init_image().empty(), "edit without init_image or the reverse");
  int64_t chain = info.num_train_timesteps;
  if (p.edit) {
    VQD_FUZZ_CHECK(p.edit->strength > 0.0f && p.edit->strength <= 1.0f, "strength %g",
                   static_cast<double>(p.edit->strength));
    VQD_FUZZ_CHECK(p.edit->image.sizes() == (std::vector<int64_t>{256, 256, 3}), "init_image tensor shape");
    VQD_FUZZ_CHECK(p.edit->regenerate.defined() == !request.mask().empty() &&
                       (!p.edit->regenerate.defined() || p.edit->regenerate.numel() == info.num_latent_pixels),
                   "mask tensor");
    chain = static_cast<int64_t>(std::floor(static_cast<double>(info.num_train_timesteps) * p.edit->strength));
    VQD_FUZZ_CHECK(chain >= 1, "an edit of no steps");
  } else {
    VQD_FUZZ_CHECK(!request.has_strength() && request.mask().empty(), "strength or mask without init_image");
  }
  if (p.time_stride > 1 || p.edit) {
    const int64_t expected = p.time_stride > 1 ? vqd::diffusion::StridedStepCount(chain, p.time_stride) : chain;
    VQD_FUZZ_CHECK(p.steps == expected, "steps %lld, the stride and strength imply %lld",
                   static_cast<long long>(p.steps), static_cast<long long>(expected));
  } else if (!request.has_steps()) {
    VQD_FUZZ_CHECK(p.steps == 100, "default steps");
  }
  if (!request.has_guidance_scale()) VQD_FUZZ_CHECK(p.guidance_scale == 5.0f, "default guidance_scale");
  if (!request.has_truncation_rate()) VQD_FUZZ_CHECK(p.truncation_rate == 1.0f, "default truncation_rate");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vqdiffusion::v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  static const vqd::pipeline::PipelineInfo info = IthqInfo();
  const vqd::server::ServiceLimits limits;
  // The server's default batch (64 rows) and a small odd one, where guidance's 2 rows per image bite.
  for (const int64_t max_batch_rows : {int64_t{64}, int64_t{7}}) {
    absl::StatusOr<vqd::engine::RequestParams> params =
        vqd::server::ValidateGenerateRequest(request, limits, info, max_batch_rows);
    if (vqd::fuzz::Verbose()) {
      std::fprintf(stderr, "ValidateGenerateRequest(max_batch_rows=%lld): %s\n",
                   static_cast<long long>(max_batch_rows), params.status().ToString().c_str());
    }
    if (!params.ok()) {
      VQD_FUZZ_CHECK(params.status().code() == absl::StatusCode::kInvalidArgument, "error code %d",
                     static_cast<int>(params.status().code()));
      continue;
    }
    CheckAccepted(request, limits, info, max_batch_rows, *params);
  }
  return 0;
}
