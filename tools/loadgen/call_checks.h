// One call and the checks of its answer: Execute sends one planned Generate call, cancelling it
// as planned, and classifies the result: the status's outcome, whether that outcome is allowed
// for the kind of request, whether the event stream is well formed (whole for OK, a prefix
// otherwise), and the labels the server may have counted the request under.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "call_registry.h"
#include "request_plan.h"
#include "vqdiffusion/v1/vqdiffusion.grpc.pb.h"

namespace vqd::loadgen {

struct Result {
  bool sent = false;  // the call was started (false: not started because of the time limit)
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  std::string outcome;  // ok, invalid, rejected, cancelled, deadline, error
  std::vector<std::string> problems;
  bool got_queued = false;
  uint32_t images_received = 0;
  int events = 0;
  double latency_s = 0;
  double first_event_s = -1;
  CancelFlags flags;
  std::set<std::string> allowed_server;  // labels (or "none") the server may count it under
};

// The name of a gRPC status code, as in the gRPC documentation (UNKNOWN, CANCELLED, ...).
std::string CodeName(grpc::StatusCode code);

void Execute(const Plan& plan, pb::VqDiffusion::Stub& stub, const ServerLimits& limits, CallRegistry& calls,
             Result* result);

}  // namespace vqd::loadgen
