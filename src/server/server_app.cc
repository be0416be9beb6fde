#include "server/server_app.h"

#include <chrono>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "io/file_util.h"
#include "server/default_model.h"

namespace vqd::server {
namespace {

constexpr char kServiceName[] = "vqdiffusion.v1.VqDiffusion";

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(const ServerConfig& config) {
  if (config.tls_cert_file.empty() && config.tls_key_file.empty()) {
    if (!config.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (config.tls_cert_file.empty() || config.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls-cert and --tls-key");
  }
  VQD_ASSIGN_OR_RETURN(std::string cert, io::ReadFile(config.tls_cert_file, 1 << 20));
  VQD_ASSIGN_OR_RETURN(std::string key, io::ReadFile(config.tls_key_file, 1 << 20));
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({key, cert});
  if (!config.tls_client_ca_file.empty()) {
    VQD_ASSIGN_OR_RETURN(options.pem_root_certs, io::ReadFile(config.tls_client_ca_file, 1 << 20));
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerApp>> ServerApp::Start(const ServerConfig& config,
                                                           engine::FaultHooks faults) {
  std::unique_ptr<ServerApp> app(new ServerApp());
  app->config_ = config;
  if (app->config_.model_dir.empty()) {
    VQD_ASSIGN_OR_RETURN(app->config_.model_dir, EnsureDefaultModel());
  }
  const ServerConfig& c = app->config_;
  VQD_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, MakeCredentials(c));

  app->metrics_ = std::make_unique<ServiceMetrics>();
  if (c.metrics_port >= 0) {
    VQD_ASSIGN_OR_RETURN(app->metrics_port_, app->metrics_->Serve(c.metrics_address, c.metrics_port));
  }

  engine::EngineOptions engine_options;
  engine_options.devices = c.devices.empty() ? std::vector<torch::Device>{torch::kCPU} : c.devices;
  engine_options.dtype = c.dtype;
  engine_options.variant = c.variant;
  engine_options.fused = c.fused;
  engine_options.max_batch_rows = c.max_batch_rows;
  engine_options.max_queue = c.max_queue;
  engine_options.priority_aging = c.priority_aging;
  engine_options.budget_recovery_interval = c.budget_recovery_interval;
  engine_options.faults = std::move(faults);
  const auto load_start = std::chrono::steady_clock::now();
  VQD_ASSIGN_OR_RETURN(app->engine_, engine::Engine::Create(c.model_dir, engine_options, app->metrics_.get()));
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  const pipeline::PipelineInfo& info = app->engine_->info();
  app->metrics_->SetModelLoadSeconds(load_seconds);
  app->metrics_->SetBuildInfo(info.model_name, DtypeName(info.dtype));
  app->metrics_->WatchDevices(engine_options.devices);

  app->service_ = std::make_unique<VqDiffusionService>(app->engine_.get(), app->metrics_.get(), c.limits, c.auth_token,
                                                       c.streams);
  grpc::EnableDefaultHealthCheckService(true);
  // The reflection service cannot check bearer tokens, so it is only offered without them.
  const bool reflection = c.reflection && c.auth_token.empty();
  if (reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(c.listen, credentials, &app->grpc_port_);
  builder.RegisterService(app->service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(c.max_message_bytes));
  // Images are sent one per message; a 256x256 PNG is well under this.
  builder.SetMaxSendMessageSize(64 << 20);
  app->server_ = builder.BuildAndStart();
  if (!app->server_ || app->grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", c.listen, " (address in use or invalid?)"));
  }
  auto* health = app->server_->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus(kServiceName, true);

  spdlog::info(
      "vqd-server {} serving model {} ({}) on {} [{}], dtype {}, load {:.2f}s; grid {}x{}, {} codes, {} steps, "
      "images {}x{}; limits: batch {} rows, queue {}, priority aging {}, {} images, {} prompt bytes; grpc port {}, metrics port {}, "
      "auth {}, tls {}, reflection {}",
      VQD_VERSION, info.model_name, c.model_dir, absl::StrJoin(app->engine_->device_names(), ","),
      app->engine_->num_workers(), DtypeName(info.dtype), load_seconds, info.grid_height, info.grid_width,
      info.codebook_size, info.num_train_timesteps, info.image_height, info.image_width, c.max_batch_rows,
      c.max_queue, c.priority_aging == absl::ZeroDuration() ? "off" : absl::FormatDuration(c.priority_aging),
      c.limits.max_images, c.limits.max_prompt_bytes, app->grpc_port_, app->metrics_port_,
      c.auth_token.empty() ? "off" : "bearer token", c.tls_cert_file.empty() ? "off" : "on",
      reflection ? "on" : "off");
  if (!c.ready_file.empty()) {
    const std::string ready = absl::StrCat("{\"grpc_port\": ", app->grpc_port_, ", \"metrics_port\": ",
                                           app->metrics_port_, ", \"pid\": ", static_cast<int64_t>(getpid()), "}\n");
    VQD_RETURN_IF_ERROR(io::WriteFile(c.ready_file, ready));
  }
  return app;
}

ServerApp::~ServerApp() {
  if (server_ && !drained_) Drain(absl::ZeroDuration());  // a failed Start has nothing to drain
}

bool ServerApp::Drain(absl::Duration grace) {
  if (drained_) return true;
  drained_ = true;
  spdlog::info("draining: refusing new requests; {} accepted ({} waiting, {} denoising) get up to {}s to finish",
               engine_->unfinished_requests(), engine_->queue_depth(), engine_->active_requests(),
               absl::ToDoubleSeconds(grace));
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus("", false);
  health->SetServingStatus(kServiceName, false);
  service_->StartDraining();
  engine_->StopIntake();
  const bool idle = engine_->WaitUntilIdle(grace);
  if (!idle) {
    spdlog::warn("grace period over: failing {} unanswered requests ({} waiting, {} denoising)",
                 engine_->unfinished_requests(), engine_->queue_depth(), engine_->active_requests());
  }
  engine_->Shutdown(absl::UnavailableError("the server is shutting down"));
  // Every call has its final status now; give their last writes a moment to reach the clients.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  spdlog::info("drained{}", idle ? " cleanly" : " after the grace period");
  return idle;
}

void ServerApp::Wait() { server_->Wait(); }

}  // namespace vqd::server
