// Helpers for the integration tests that talk to a real server over gRPC on loopback.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "vqdiffusion/v1/vqdiffusion.grpc.pb.h"

namespace vqd::testing {

struct StreamResult {
  std::vector<vqdiffusion::v1::GenerateEvent> events;
  grpc::Status status;

  std::vector<const vqdiffusion::v1::Image*> images() const;
  std::vector<const vqdiffusion::v1::Progress*> progress() const;
  bool has_done() const;
  // Final token grids, image by image (from the Image events).
  std::vector<std::vector<uint32_t>> final_grids() const;
};

std::unique_ptr<vqdiffusion::v1::VqDiffusion::Stub> MakeStub(int port, const std::string& host = "127.0.0.1");

// Runs one Generate call to the end. `context_setup` may set a deadline or metadata.
StreamResult Generate(vqdiffusion::v1::VqDiffusion::Stub& stub, const vqdiffusion::v1::GenerateRequest& request,
                      double deadline_seconds = 120, const std::map<std::string, std::string>& metadata = {});

// Runs each request on a thread of its own from construction; Join() waits for all of them and
// returns their results in the order of the requests.
class ConcurrentCalls {
 public:
  ConcurrentCalls(vqdiffusion::v1::VqDiffusion::Stub& stub, std::vector<vqdiffusion::v1::GenerateRequest> requests);
  ~ConcurrentCalls();
  std::vector<StreamResult> Join();

 private:
  std::vector<vqdiffusion::v1::GenerateRequest> requests_;
  std::vector<StreamResult> results_;
  std::vector<std::thread> threads_;
};

inline std::vector<StreamResult> RunConcurrently(vqdiffusion::v1::VqDiffusion::Stub& stub,
                                                 std::vector<vqdiffusion::v1::GenerateRequest> requests) {
  return ConcurrentCalls(stub, std::move(requests)).Join();
}

// GET http://127.0.0.1:port/metrics.
std::string ScrapeMetrics(int port);
// The value of one sample line, e.g. `vqd_requests_total{outcome="ok"}`; -1 if absent.
double MetricValue(const std::string& text, const std::string& sample);

}  // namespace vqd::testing
