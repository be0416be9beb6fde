// Prometheus metrics of the service (prometheus-cpp), served at /metrics on the metrics port.
// Names follow Prometheus conventions: vqd_ prefix, base units (_seconds, _bytes), _total for
// counters. The list is mirrored in tests/deploy/exported_metrics.txt, which the dashboard and
// alert tests check against.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/status/statusor.h"
#include "engine/engine_observer.h"
#include "server/metrics_http_server.h"

namespace vqd::server {

class ServiceMetrics : public engine::EngineObserver {
 public:
  ServiceMetrics();
  ~ServiceMetrics() override;

  // Serves /metrics on `address:port` (port 0: any free port). Returns the port.
  absl::StatusOr<int> Serve(const std::string& address, int port);
  // Samples the devices' memory every second (CUDA devices only).
  void WatchDevices(const std::vector<torch::Device>& devices);
  void SetBuildInfo(const std::string& model, const std::string& dtype);
  void SetModelLoadSeconds(double seconds);

  // A request that never reached the engine (invalid or rejected).
  void OnRequestRefused(engine::Outcome outcome);
  // The server cancelled a call whose client stopped reading: `reason` is "stalled" (no write
  // accepted for the stalled-stream timeout) or "buffer_full" (too many bytes pending).
  void OnStreamCancelled(const std::string& reason);

  // EngineObserver.
  void OnStep(const std::string& device, int64_t rows, int64_t requests, double seconds) override;
  void OnTextEncoded(double seconds) override;
  void OnDecoded(double seconds, int64_t images) override;
  void OnFirstProgress(double seconds) override;
  void OnQueueDepth(int64_t depth) override;
  void OnActive(const std::string& device, int64_t requests, int64_t images) override;
  void OnRequestFinished(const std::string& request_id, engine::Outcome outcome,
                         const engine::RequestTimings& timings, int64_t images, const absl::Status& status) override;

  prometheus::Registry& registry() { return *registry_; }

 private:
  prometheus::Counter& RequestCounter(engine::Outcome outcome);

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricsHttpServer> http_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Histogram>& queue_wait_;
  prometheus::Family<prometheus::Histogram>& first_progress_;
  prometheus::Family<prometheus::Histogram>& step_duration_;
  prometheus::Family<prometheus::Histogram>& text_encode_;
  prometheus::Family<prometheus::Histogram>& decode_;
  prometheus::Family<prometheus::Histogram>& batch_rows_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Gauge>& active_samples_;
  prometheus::Family<prometheus::Gauge>& active_requests_;
  prometheus::Family<prometheus::Gauge>& gpu_allocated_;
  prometheus::Family<prometheus::Gauge>& gpu_reserved_;
  prometheus::Family<prometheus::Counter>& images_;
  prometheus::Family<prometheus::Counter>& steps_;
  prometheus::Family<prometheus::Counter>& streams_cancelled_;
  prometheus::Family<prometheus::Gauge>& model_load_;
  prometheus::Family<prometheus::Gauge>& build_info_;

  std::atomic<bool> stop_{false};
  std::thread device_watcher_;
};

}  // namespace vqd::server
