// The request plan: the four kinds of request (normal, invalid, cancel, deadline), the server's
// limits as GetModelInfo gives them, one planned request (a Plan: the GenerateRequest and what its
// answer must look like), and the Planner that draws them from a seed.
#pragma once

#include <cstdint>
#include <random>
#include <set>
#include <string>

#include "vqdiffusion/v1/vqdiffusion.pb.h"

namespace vqd::loadgen {

namespace pb = ::vqdiffusion::v1;

enum class Kind { kNormal, kInvalid, kCancel, kDeadline };
const char* KindName(Kind k);

struct ServerLimits {
  uint32_t max_images = 16, max_batch_rows = 64, max_queue = 256, max_prompt_bytes = 4096, max_steps = 100;
  uint32_t grid_h = 0, grid_w = 0, image_h = 0, image_w = 0, codebook = 0, mask_token = 0;
  std::set<std::string> devices;
};

struct Plan {
  int index = 0;
  Kind kind = Kind::kNormal;
  pb::GenerateRequest request;
  std::string invalid_field;  // kInvalid: the field the message must name
  std::string invalid_what;   // kInvalid: what was wrong (for reports)
  uint32_t num_images = 1;    // as the server will see it (defaults applied)
  uint32_t steps = 1;
  bool cancel_after_queued = false;
  double cancel_delay_s = 0;  // kCancel
  double deadline_s = 0;      // kDeadline
};

class Planner {
 public:
  Planner(uint64_t seed, const ServerLimits& limits, uint32_t max_steps, uint32_t max_images)
      : rng_(seed), seed_(seed), limits_(limits), max_steps_(max_steps), max_images_(max_images) {}

  Plan Make(int index, double invalid_fraction, double cancel_fraction, double deadline_fraction);

 private:
  double Uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  int64_t Int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  bool Chance(double p) { return Uniform(0, 1) < p; }

  std::string Words(size_t min_bytes, size_t max_bytes);
  void FillValid(Plan& p);
  // Exactly one field out of range; the rest stays valid.
  void MakeInvalid(Plan& p);

  std::mt19937_64 rng_;
  uint64_t seed_;
  ServerLimits limits_;
  uint32_t max_steps_, max_images_;
};

}  // namespace vqd::loadgen
