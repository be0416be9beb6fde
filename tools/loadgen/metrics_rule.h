// The metrics rule (stated at the top of loadgen_main.cc): which labels of vqd_requests_total the
// server may have counted each request under, given what the client saw, whether the counters'
// deltas admit an assignment of every request sent to one of its allowed labels, and whether
// vqd_images_generated_total moved by the images of the requests the server finished ok.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "call_checks.h"
#include "request_plan.h"

namespace vqd::loadgen {

// The outcome labels of vqd_requests_total, which are also the client's outcomes of a call.
extern const std::vector<std::string> kOutcomes;

// The sample of vqd_requests_total for `outcome`, as the server prints it.
std::string OutcomeKey(const std::string& outcome);

struct MetricsCheck {
  bool enabled = false;
  bool settled = false;
  double settle_seconds = 0;
  std::map<std::string, double> delta;  // per outcome
  double images_delta = 0;
  double final_queue_depth = -1, final_active_requests = -1;
  std::vector<std::string> problems;
};

// What the server may have counted a request of `kind` as, the client's outcome being `o` (the
// labels of kOutcomes, or "none": never counted); `got_queued`: the client saw the Queued event.
std::set<std::string> AllowedServerLabels(Kind kind, const std::string& o, bool got_queued);

// Exact feasibility: can every request be given one label of its allowed set such that each
// label gets exactly delta[label] requests? Hall's condition for every subset of labels.
void CheckAssignment(const std::vector<const Result*>& sent, const std::map<std::string, double>& delta,
                     std::vector<std::string>* problems);

// vqd_images_generated_total: its delta must be the images of the client-OK requests plus the
// num_images of the requests the server finished ok although the client gave up (`results`
// parallel to `plans`; `client_ok` requests ended OK for the client, with `images` images).
void CheckImages(const std::vector<Plan>& plans, const std::vector<Result>& results, double client_ok, int64_t images,
                 MetricsCheck* metrics);

}  // namespace vqd::loadgen
