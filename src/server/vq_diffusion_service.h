// The vqdiffusion.v1.VqDiffusion service over the gRPC callback API: Generate validates the
// request, hands it to the engine and streams its events through an EventStream; GetModelInfo
// describes the model and the limits.
#pragma once

#include <atomic>
#include <string>

#include "engine/engine.h"
#include "server/metrics.h"
#include "server/server_config.h"
#include "server/stream_watchdog.h"
#include "vqdiffusion/v1/vqdiffusion.grpc.pb.h"

namespace vqd::server {

class VqDiffusionService final : public vqdiffusion::v1::VqDiffusion::CallbackService {
 public:
  VqDiffusionService(engine::Engine* engine, ServiceMetrics* metrics, ServiceLimits limits, std::string auth_token,
                     StreamLimits stream_limits = {});

  grpc::ServerWriteReactor<vqdiffusion::v1::GenerateEvent>* Generate(
      grpc::CallbackServerContext* context, const vqdiffusion::v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const vqdiffusion::v1::GetModelInfoRequest* request,
                                         vqdiffusion::v1::ModelInfo* response) override;

  // New Generate calls get UNAVAILABLE from now on.
  void StartDraining() { draining_.store(true); }

  vqdiffusion::v1::ModelInfo ModelInfo() const;

 private:
  engine::Engine* engine_;
  ServiceMetrics* metrics_;
  const ServiceLimits limits_;
  const std::string auth_token_;
  const StreamLimits stream_limits_;
  StreamWatchdog watchdog_;
  std::atomic<bool> draining_{false};
};

}  // namespace vqd::server
