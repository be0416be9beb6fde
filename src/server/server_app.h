// The whole service in one object: the engine with its devices, the gRPC server (VqDiffusion,
// health, reflection), the metrics endpoint, and the drain on shutdown. vqd-server's main and
// the integration tests both run it.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "server/metrics.h"
#include "server/server_config.h"
#include "server/vq_diffusion_service.h"

namespace vqd::server {

class ServerApp {
 public:
  // Loads the model and starts serving. The fault hooks are for tests only.
  static absl::StatusOr<std::unique_ptr<ServerApp>> Start(const ServerConfig& config, engine::FaultHooks faults = {});
  static absl::StatusOr<std::unique_ptr<ServerApp>> Start(const ServerConfig& config, engine::StepFaultHook step) {
    return Start(config, engine::FaultHooks{std::move(step), {}});
  }
  ~ServerApp();

  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }  // -1 without a metrics endpoint
  engine::Engine& engine() { return *engine_; }
  ServiceMetrics& metrics() { return *metrics_; }
  const ServerConfig& config() const { return config_; }

  // Graceful stop: health NOT_SERVING, new calls UNAVAILABLE, running and queued requests get
  // up to `grace` to finish, the rest is failed with UNAVAILABLE, then the server shuts down.
  // Returns whether everything finished within the grace period.
  bool Drain(absl::Duration grace);
  // Blocks until the gRPC server has shut down.
  void Wait();

 private:
  ServerApp() = default;

  ServerConfig config_;
  std::unique_ptr<ServiceMetrics> metrics_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<VqDiffusionService> service_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  int metrics_port_ = -1;
  bool drained_ = false;
};

}  // namespace vqd::server
