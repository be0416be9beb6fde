// Everything vqd-server is configured with (filled from its command-line flags).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/time/time.h"

namespace vqd::server {

// What one Generate stream may hold for a client that does not read it.
struct StreamLimits {
  int64_t max_pending_bytes = 64 << 20;           // events waiting to be written; beyond it the call is cancelled
  absl::Duration stalled_timeout = absl::Seconds(60);  // a write not accepted for this long cancels the call
};

// Request limits the service enforces (and reports in GetModelInfo).
struct ServiceLimits {
  int64_t max_images = 16;
  int64_t max_prompt_bytes = 4096;
  int64_t max_request_id_bytes = 128;
  int64_t max_progress_interval = 1000;
};

struct ServerConfig {
  std::string model_dir;  // empty: the built-in tiny model (created on first start)
  std::string listen = "0.0.0.0:50051";
  int metrics_port = 9464;  // 0: any free port; -1: no metrics endpoint
  std::string metrics_address = "0.0.0.0";
  std::vector<torch::Device> devices;
  torch::Dtype dtype = torch::kFloat32;
  std::optional<std::string> variant;
  std::optional<bool> fused;  // the fast path; unset: the pipeline's default (see PipelineOptions)
  int64_t max_batch_rows = 64;
  size_t max_queue = 256;
  absl::Duration priority_aging;  // 0: strict priorities
  absl::Duration budget_recovery_interval = absl::Seconds(30);  // see EngineOptions
  ServiceLimits limits;
  StreamLimits streams;
  absl::Duration grace_period = absl::Seconds(30);
  int64_t max_message_bytes = 16 << 20;  // largest request the server accepts
  // Security (all optional).
  std::string auth_token;  // bearer token required on every call except health
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  bool reflection = true;
  // Written once serving: {"grpc_port": N, "metrics_port": M} (for scripts and tests).
  std::string ready_file;
};

}  // namespace vqd::server
