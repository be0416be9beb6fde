#include "server/metrics.h"

#include <chrono>

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include "absl/strings/str_cat.h"
#include "base/torch_util.h"

namespace vqd::server {
namespace {

using prometheus::Histogram;

// Requests take from tens of milliseconds (tiny model) to minutes (a full queue on ITHQ).
const Histogram::BucketBoundaries kRequestBuckets = {0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20,
                                                      30, 45, 60, 90, 120, 180, 300, 600};
// Steps take milliseconds (one image of the tiny model) to seconds (a full ITHQ batch).
const Histogram::BucketBoundaries kStepBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                   0.5, 1, 2.5, 5, 10};
const Histogram::BucketBoundaries kShortBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
const Histogram::BucketBoundaries kRowBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256};

}  // namespace

ServiceMetrics::ServiceMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("vqd_requests_total")
                    .Help("Generate requests by how they ended: ok, invalid, rejected, cancelled, deadline, error")
                    .Register(*registry_)),
      request_duration_(prometheus::BuildHistogram()
                            .Name("vqd_request_duration_seconds")
                            .Help("End-to-end time of accepted requests, from acceptance to their last event")
                            .Register(*registry_)),
      queue_wait_(prometheus::BuildHistogram()
                      .Name("vqd_queue_wait_seconds")
                      .Help("Time requests waited in the queue before joining a batch")
                      .Register(*registry_)),
      first_progress_(prometheus::BuildHistogram()
                          .Name("vqd_time_to_first_progress_seconds")
                          .Help("Time from a request joining a batch to its first progress event")
                          .Register(*registry_)),
      step_duration_(prometheus::BuildHistogram()
                         .Name("vqd_step_duration_seconds")
                         .Help("Wall time of one denoising step of a device's whole batch")
                         .Register(*registry_)),
      text_encode_(prometheus::BuildHistogram()
                       .Name("vqd_text_encode_duration_seconds")
                       .Help("Time to encode one prompt")
                       .Register(*registry_)),
      decode_(prometheus::BuildHistogram()
                  .Name("vqd_decode_duration_seconds")
                  .Help("Time to decode a request's token grids to PNG images")
                  .Register(*registry_)),
      batch_rows_(prometheus::BuildHistogram()
                      .Name("vqd_step_batch_rows")
                      .Help("Transformer rows per denoising step (an image costs 2 with guidance)")
                      .Register(*registry_)),
      queue_depth_(prometheus::BuildGauge()
                       .Name("vqd_queue_depth")
                       .Help("Requests waiting for a place in a batch")
                       .Register(*registry_)),
      active_samples_(prometheus::BuildGauge()
                          .Name("vqd_active_samples")
                          .Help("Images being denoised on a device")
                          .Register(*registry_)),
      active_requests_(prometheus::BuildGauge()
                           .Name("vqd_active_requests")
                           .Help("Requests being denoised on a device")
                           .Register(*registry_)),
      gpu_allocated_(prometheus::BuildGauge()
                         .Name("vqd_gpu_memory_allocated_bytes")
                         .Help("Device memory held by tensors (CUDA caching allocator)")
                         .Register(*registry_)),
      gpu_reserved_(prometheus::BuildGauge()
                        .Name("vqd_gpu_memory_reserved_bytes")
                        .Help("Device memory reserved by the CUDA caching allocator")
                        .Register(*registry_)),
      images_(prometheus::BuildCounter()
                  .Name("vqd_images_generated_total")
                  .Help("Images generated and sent to clients")
                  .Register(*registry_)),
      steps_(prometheus::BuildCounter()
                 .Name("vqd_steps_total")
                 .Help("Denoising steps run (each over a whole batch)")
                 .Register(*registry_)),
      streams_cancelled_(prometheus::BuildCounter()
                             .Name("vqd_streams_cancelled_total")
                             .Help("Calls the server cancelled because their client stopped reading, by reason")
                             .Register(*registry_)),
      model_load_(prometheus::BuildGauge()
                      .Name("vqd_model_load_seconds")
                      .Help("Time it took to load the model on all devices at start-up")
                      .Register(*registry_)),
      build_info_(prometheus::BuildGauge()
                      .Name("vqd_build_info")
                      .Help("Constant 1, labelled with the server version, libtorch version, model and dtype")
                      .Register(*registry_)) {
  for (engine::Outcome o : {engine::Outcome::kOk, engine::Outcome::kInvalid, engine::Outcome::kRejected,
                            engine::Outcome::kCancelled, engine::Outcome::kDeadline, engine::Outcome::kError}) {
    RequestCounter(o);  // every outcome exported from the start, at 0
  }
  request_duration_.Add({}, kRequestBuckets);
  queue_wait_.Add({}, kRequestBuckets);
  first_progress_.Add({}, kShortBuckets);
  text_encode_.Add({}, kShortBuckets);
  decode_.Add({}, kShortBuckets);
  queue_depth_.Add({}).Set(0);
  images_.Add({});
  for (const char* reason : {"stalled", "buffer_full"}) streams_cancelled_.Add({{"reason", reason}});
}

void ServiceMetrics::OnStreamCancelled(const std::string& reason) {
  streams_cancelled_.Add({{"reason", reason}}).Increment();
}

ServiceMetrics::~ServiceMetrics() {
  stop_.store(true);
  if (device_watcher_.joinable()) device_watcher_.join();
}

absl::StatusOr<int> ServiceMetrics::Serve(const std::string& address, int port) {
  auto server = MetricsHttpServer::Start(address, port, [registry = registry_] {
    return prometheus::TextSerializer().Serialize(registry->Collect());
  });
  if (!server.ok()) return server.status();
  http_ = std::move(*server);
  return http_->port();
}

void ServiceMetrics::WatchDevices(const std::vector<torch::Device>& devices) {
  std::vector<torch::Device> cuda;
  for (const auto& d : devices) {
    if (d.is_cuda()) cuda.push_back(d);
  }
  if (cuda.empty()) return;
  device_watcher_ = std::thread([this, cuda] {
    while (!stop_.load()) {
      for (const auto& d : cuda) {
        if (auto m = QueryDeviceMemory(d)) {
          gpu_allocated_.Add({{"device", d.str()}}).Set(static_cast<double>(m->allocated_bytes));
          gpu_reserved_.Add({{"device", d.str()}}).Set(static_cast<double>(m->reserved_bytes));
        }
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  });
}

void ServiceMetrics::SetBuildInfo(const std::string& model, const std::string& dtype) {
  build_info_
      .Add({{"version", VQD_VERSION}, {"torch_version", TORCH_VERSION}, {"model", model}, {"dtype", dtype}})
      .Set(1);
}

void ServiceMetrics::SetModelLoadSeconds(double seconds) { model_load_.Add({}).Set(seconds); }

prometheus::Counter& ServiceMetrics::RequestCounter(engine::Outcome outcome) {
  return requests_.Add({{"outcome", engine::OutcomeName(outcome)}});
}

void ServiceMetrics::OnRequestRefused(engine::Outcome outcome) { RequestCounter(outcome).Increment(); }

void ServiceMetrics::OnStep(const std::string& device, int64_t rows, int64_t requests, double seconds) {
  step_duration_.Add({{"device", device}}, kStepBuckets).Observe(seconds);
  batch_rows_.Add({{"device", device}}, kRowBuckets).Observe(static_cast<double>(rows));
  steps_.Add({{"device", device}}).Increment();
}

void ServiceMetrics::OnTextEncoded(double seconds) { text_encode_.Add({}, kShortBuckets).Observe(seconds); }

void ServiceMetrics::OnDecoded(double seconds, int64_t images) { decode_.Add({}, kShortBuckets).Observe(seconds); }

void ServiceMetrics::OnFirstProgress(double seconds) { first_progress_.Add({}, kShortBuckets).Observe(seconds); }

void ServiceMetrics::OnQueueDepth(int64_t depth) { queue_depth_.Add({}).Set(static_cast<double>(depth)); }

void ServiceMetrics::OnActive(const std::string& device, int64_t requests, int64_t images) {
  active_requests_.Add({{"device", device}}).Set(static_cast<double>(requests));
  active_samples_.Add({{"device", device}}).Set(static_cast<double>(images));
}

void ServiceMetrics::OnRequestFinished(const std::string& request_id, engine::Outcome outcome,
                                       const engine::RequestTimings& timings, int64_t images,
                                       const absl::Status& status) {
  RequestCounter(outcome).Increment();
  request_duration_.Add({}, kRequestBuckets).Observe(timings.total_seconds);
  queue_wait_.Add({}, kRequestBuckets).Observe(timings.queue_seconds);
  if (images > 0) images_.Add({}).Increment(static_cast<double>(images));
}

}  // namespace vqd::server
