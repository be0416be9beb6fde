#include "request_plan.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vqd::loadgen {
namespace {

const std::vector<std::string> kWords = {
    "a",     "red",      "car",    "by",    "the",      "sea",       "teddy",  "bear",       "playing", "in",
    "pool",  "bowl",     "of",     "fruit", "mountain", "lake",      "at",     "sunset",     "oil",     "painting",
    "cat",   "wearing",  "hat",    "city",  "street",   "rain",      "neon",   "lights",     "forest",  "cabin",
    "snow",  "portrait", "old",    "man",   "robot",    "astronaut", "horse",  "watercolor", "sketch",  "blue",
    "green", "golden",   "hour",   "photo", "detailed", "4k",        "castle", "dragon",     "café",    "東京",
    "naïve", "crème",    "brûlée", "🚀",     "🌊",        "Ünïcödé",   "ß",      "日本の庭"};

}  // namespace

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNormal:
      return "normal";
    case Kind::kInvalid:
      return "invalid";
    case Kind::kCancel:
      return "cancel";
    case Kind::kDeadline:
      return "deadline";
  }
  return "?";
}

Plan Planner::Make(int index, double invalid_fraction, double cancel_fraction, double deadline_fraction) {
  Plan p;
  p.index = index;
  const double u = Uniform(0, 1);
  if (u < invalid_fraction) {
    p.kind = Kind::kInvalid;
  } else if (u < invalid_fraction + cancel_fraction) {
    p.kind = Kind::kCancel;
  } else if (u < invalid_fraction + cancel_fraction + deadline_fraction) {
    p.kind = Kind::kDeadline;
  } else {
    p.kind = Kind::kNormal;
  }
  FillValid(p);
  if (p.kind == Kind::kInvalid) MakeInvalid(p);
  if (p.kind == Kind::kCancel) {
    p.cancel_after_queued = Uniform(0, 1) < 0.75;
    p.cancel_delay_s = p.cancel_after_queued ? std::pow(10.0, Uniform(-3, std::log10(3.0))) : Uniform(0, 0.02);
  }
  if (p.kind == Kind::kDeadline) {
    const double r = Uniform(0, 1);
    p.deadline_s = r < 0.25 ? Uniform(0.001, 0.02) : r < 0.65 ? Uniform(0.02, 1.0) : Uniform(1.0, 4.0);
  }
  return p;
}

std::string Planner::Words(size_t min_bytes, size_t max_bytes) {
  std::string s;
  while (true) {
    const std::string& w = kWords[static_cast<size_t>(Int(0, static_cast<int64_t>(kWords.size()) - 1))];
    const size_t next = s.size() + (s.empty() ? 0 : 1) + w.size();
    if (next > max_bytes) break;
    if (!s.empty()) s += ' ';
    s += w;
    if (s.size() >= min_bytes && Chance(0.02)) break;
  }
  return s;
}

void Planner::FillValid(Plan& p) {
  pb::GenerateRequest& r = p.request;
  r.set_request_id(absl::StrFormat("lg-%d-%06d", seed_, p.index));
  // Prompt: sometimes empty, sometimes long (past the encoder's 77 tokens, up to the byte limit).
  const double pr = Uniform(0, 1);
  if (pr < 0.1) {
    r.set_prompt("");
  } else if (pr < 0.2) {
    const size_t max_bytes = limits_.max_prompt_bytes;
    r.set_prompt(Words(std::min<size_t>(400, max_bytes),
                       static_cast<size_t>(Int(std::min<int64_t>(400, max_bytes), max_bytes))));
  } else {
    std::string s;
    const int n = static_cast<int>(Int(1, 12));
    for (int i = 0; i < n; ++i) {
      const std::string& w = kWords[static_cast<size_t>(Int(0, static_cast<int64_t>(kWords.size()) - 1))];
      if (s.size() + w.size() + 1 > limits_.max_prompt_bytes) break;
      if (!s.empty()) s += ' ';
      s += w;
    }
    r.set_prompt(s);
  }
  // Guidance: 0, 1 or in (1, 10); sometimes unset (the server's 5.0).
  const double gr = Uniform(0, 1);
  float guidance;
  if (gr < 0.1) {
    guidance = 5.0f;  // unset
  } else if (gr < 0.4) {
    guidance = 0.0f;
    r.set_guidance_scale(guidance);
  } else if (gr < 0.55) {
    guidance = 1.0f;
    r.set_guidance_scale(guidance);
  } else {
    guidance = static_cast<float>(Uniform(1.0, 10.0));
    if (guidance <= 1.0f) guidance = 1.5f;
    r.set_guidance_scale(guidance);
  }
  const bool guided = guidance > 1.0f;
  // Images: within the server's max_images, our --max-images, and the rows of one batch.
  uint32_t max_images = std::min(max_images_, limits_.max_images);
  max_images = std::min(max_images, guided ? limits_.max_batch_rows / 2 : limits_.max_batch_rows);
  max_images = std::max<uint32_t>(max_images, 1);
  if (Chance(0.1)) {
    p.num_images = 1;  // unset
  } else {
    p.num_images = static_cast<uint32_t>(Int(1, max_images));
    r.set_num_images(p.num_images);
  }
  // Steps in [1, K]; unset means the server's default (100 or the schedule's length).
  const uint32_t default_steps = std::min<uint32_t>(100, limits_.max_steps);
  if (default_steps <= max_steps_ && Chance(0.05)) {
    p.steps = default_steps;
  } else {
    p.steps = static_cast<uint32_t>(Int(1, max_steps_));
    r.set_steps(p.steps);
  }
  // Truncation in (0.3, 1]; sometimes exactly 1, sometimes unset (1.0).
  const double tr = Uniform(0, 1);
  if (tr < 0.1) {
    // unset
  } else if (tr < 0.25) {
    r.set_truncation_rate(1.0f);
  } else {
    float t = static_cast<float>(Uniform(0.3, 1.0));
    if (t <= 0.3f) t = 0.5f;
    r.set_truncation_rate(t);
  }
  if (Chance(0.8)) r.set_seed(Chance(0.2) ? rng_() : rng_() >> 33);
  const double pi = Uniform(0, 1);
  if (pi < 0.4) {
    r.set_progress_interval(0);
  } else if (pi < 0.6) {
    r.set_progress_interval(1);
  } else {
    r.set_progress_interval(static_cast<uint32_t>(Int(1, p.steps + 3)));
  }
  const double prio = Uniform(0, 1);
  if (prio < 0.5) {
    r.set_priority(0);
  } else if (prio < 0.95) {
    r.set_priority(static_cast<int32_t>(Int(-5, 5)));
  } else {
    r.set_priority(Chance(0.5) ? INT32_MAX : INT32_MIN);
  }
}

void Planner::MakeInvalid(Plan& p) {
  pb::GenerateRequest& r = p.request;
  std::vector<int> choices = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  // 12: too many rows for one batch: only when max_images allows such a request.
  const bool rows_case_possible = limits_.max_batch_rows / 2 + 1 <= limits_.max_images;
  if (!rows_case_possible) choices.pop_back();
  switch (choices[static_cast<size_t>(Int(0, static_cast<int64_t>(choices.size()) - 1))]) {
    case 0:
      r.set_steps(0);
      p.invalid_field = "steps", p.invalid_what = "steps 0";
      break;
    case 1:
      r.set_steps(limits_.max_steps + static_cast<uint32_t>(Int(1, 1000)));
      p.invalid_field = "steps", p.invalid_what = absl::StrCat("steps ", r.steps());
      break;
    case 2:
      r.set_truncation_rate(0.0f);
      p.invalid_field = "truncation_rate", p.invalid_what = "truncation 0";
      break;
    case 3:
      r.set_truncation_rate(static_cast<float>(Uniform(1.001, 5.0)));
      p.invalid_field = "truncation_rate", p.invalid_what = absl::StrCat("truncation ", r.truncation_rate());
      break;
    case 4:
      r.set_truncation_rate(Chance(0.5) ? -0.5f : std::numeric_limits<float>::quiet_NaN());
      p.invalid_field = "truncation_rate", p.invalid_what = absl::StrCat("truncation ", r.truncation_rate());
      break;
    case 5:
      r.set_guidance_scale(static_cast<float>(-Uniform(0.001, 10.0)));
      p.invalid_field = "guidance_scale", p.invalid_what = absl::StrCat("guidance ", r.guidance_scale());
      break;
    case 6:
      r.set_guidance_scale(Chance(0.5) ? std::numeric_limits<float>::quiet_NaN()
                                       : std::numeric_limits<float>::infinity());
      p.invalid_field = "guidance_scale", p.invalid_what = absl::StrCat("guidance ", r.guidance_scale());
      break;
    case 7:
      r.set_num_images(0);
      p.invalid_field = "num_images", p.invalid_what = "num_images 0";
      break;
    case 8:
      r.set_num_images(limits_.max_images + static_cast<uint32_t>(Int(1, 100)));
      p.invalid_field = "num_images", p.invalid_what = absl::StrCat("num_images ", r.num_images());
      break;
    case 9:
      r.set_prompt(std::string(limits_.max_prompt_bytes + static_cast<size_t>(Int(1, 100)), 'x'));
      p.invalid_field = "prompt", p.invalid_what = absl::StrCat("prompt of ", r.prompt().size(), " bytes");
      break;
    case 10:
      r.set_request_id(absl::StrCat(r.request_id(), " with spaces"));
      p.invalid_field = "request_id", p.invalid_what = "request_id with spaces";
      break;
    case 11:
      r.set_request_id(r.request_id() + std::string(200, 'z'));
      p.invalid_field = "request_id", p.invalid_what = absl::StrCat("request_id of ", r.request_id().size(), " bytes");
      break;
    case 12: {
      // Guided, more images than half the batch's rows, but within max_images.
      r.set_guidance_scale(static_cast<float>(Uniform(1.5, 10.0)));
      r.set_num_images(static_cast<uint32_t>(Int(limits_.max_batch_rows / 2 + 1, limits_.max_images)));
      p.invalid_field = "num_images";
      p.invalid_what = absl::StrCat(r.num_images(), " guided images for ", limits_.max_batch_rows, " rows");
      break;
    }
  }
  p.num_images = r.has_num_images() ? r.num_images() : 1;
}

}  // namespace vqd::loadgen
