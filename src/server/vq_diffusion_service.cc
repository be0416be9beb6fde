#include "server/vq_diffusion_service.h"

#include <spdlog/spdlog.h>

#include "base/torch_util.h"
#include "server/auth.h"
#include "server/event_stream.h"
#include "server/request_validation.h"

namespace vqd::server {
namespace v1 = vqdiffusion::v1;

namespace {

// The call's deadline on the engine's clock, if the client set one.
std::optional<engine::Clock::time_point> EngineDeadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return std::nullopt;
  const auto remaining = deadline - std::chrono::system_clock::now();
  if (remaining > std::chrono::hours(24 * 365)) return std::nullopt;  // "infinite" in practice
  return engine::Clock::now() + std::chrono::duration_cast<engine::Clock::duration>(remaining);
}

engine::Outcome RefusalOutcome(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ? engine::Outcome::kInvalid : engine::Outcome::kRejected;
}

}  // namespace

VqDiffusionService::VqDiffusionService(engine::Engine* engine, ServiceMetrics* metrics, ServiceLimits limits,
                                       std::string auth_token, StreamLimits stream_limits)
    : engine_(engine),
      metrics_(metrics),
      limits_(limits),
      auth_token_(std::move(auth_token)),
      stream_limits_(stream_limits),
      watchdog_(stream_limits.stalled_timeout) {}

grpc::ServerWriteReactor<v1::GenerateEvent>* VqDiffusionService::Generate(grpc::CallbackServerContext* context,
                                                                           const v1::GenerateRequest* request) {
  absl::Status status = CheckBearerToken(*context, auth_token_);
  absl::StatusOr<engine::RequestParams> params = absl::UnknownError("unset");
  if (status.ok() && draining_.load()) {
    status = absl::UnavailableError("the server is shutting down and accepts no new requests");
  }
  if (status.ok()) {
    params = ValidateGenerateRequest(*request, limits_, engine_->info(), engine_->options().max_batch_rows);
    status = params.status();
  }
  // An id that failed validation is not echoed into the logs.
  const std::string request_id = params.ok() ? params->request_id : "-";
  auto stream = std::make_shared<EventStream>(request_id, stream_limits_.max_pending_bytes);
  if (!status.ok()) {
    const engine::Outcome outcome = status.code() == absl::StatusCode::kUnauthenticated ? engine::Outcome::kRejected
                                                                                          : RefusalOutcome(status);
    if (metrics_) metrics_->OnRequestRefused(outcome);  // counted before the client sees the status
    auto* reactor = new GenerateReactor(stream, nullptr);
    stream->Attach(reactor);
    stream->FinishNow(ToGrpcStatus(status));
    spdlog::info("request {} finished: outcome={} status={} \"{}\" peer={}", request_id,
                 engine::OutcomeName(outcome), absl::StatusCodeToString(status.code()), std::string(status.message()),
                 context->peer());
    return reactor;
  }

  auto generation = std::make_shared<engine::GenerationRequest>(std::move(*params), stream, EngineDeadline(*context));
  engine::Engine* engine = engine_;
  auto* reactor = new GenerateReactor(stream, [engine, generation] { engine->Cancel(generation); });
  if (metrics_) stream->SetOnServerCancel([metrics = metrics_](const std::string& reason) {
    metrics->OnStreamCancelled(reason);
  });
  stream->Attach(reactor, context);
  watchdog_.Watch(stream);
  status = engine_->Submit(generation);
  if (!status.ok()) {
    const engine::Outcome outcome = RefusalOutcome(status);
    if (metrics_) metrics_->OnRequestRefused(outcome);
    spdlog::info("request {} finished: outcome={} status={} \"{}\"", request_id, engine::OutcomeName(outcome),
                 absl::StatusCodeToString(status.code()), std::string(status.message()));
    generation->Fail(status, outcome);  // answers through the stream
  } else {
    spdlog::debug("request {} accepted: images={} steps={} guidance={} truncation={} seed={} priority={}", request_id,
                  generation->params().num_images, generation->params().steps, generation->params().guidance_scale,
                  generation->params().truncation_rate, generation->params().seed, generation->params().priority);
  }
  return reactor;
}

v1::ModelInfo VqDiffusionService::ModelInfo() const {
  const pipeline::PipelineInfo& info = engine_->info();
  v1::ModelInfo m;
  m.set_model_name(info.model_name);
  m.set_grid_height(static_cast<uint32_t>(info.grid_height));
  m.set_grid_width(static_cast<uint32_t>(info.grid_width));
  m.set_image_height(static_cast<uint32_t>(info.image_height));
  m.set_image_width(static_cast<uint32_t>(info.image_width));
  m.set_codebook_size(static_cast<uint32_t>(info.codebook_size));
  m.set_mask_token(static_cast<uint32_t>(info.codebook_size));
  m.set_num_train_timesteps(static_cast<uint32_t>(info.num_train_timesteps));
  for (const auto& d : engine_->device_names()) m.add_devices(d);
  m.set_dtype(DtypeName(info.dtype));
  m.set_learned_null_embeddings(info.learned_null_embeddings);
  m.set_server_version(VQD_VERSION);
  m.set_max_prompt_tokens(static_cast<uint32_t>(info.max_prompt_tokens));
  m.set_conditioning(pipeline::ConditioningName(info.conditioning));
  m.set_num_classes(static_cast<uint32_t>(info.num_classes));
  m.set_default_guidance_scale(info.default_guidance_scale);
  m.set_default_truncation_rate(info.default_truncation_rate);
  m.set_sampler(pipeline::SamplerName(info.sampler));
  v1::Limits* l = m.mutable_limits();
  l->set_max_images(static_cast<uint32_t>(limits_.max_images));
  l->set_max_batch_rows(static_cast<uint32_t>(engine_->options().max_batch_rows));
  l->set_max_queue(static_cast<uint32_t>(engine_->options().max_queue));
  l->set_max_prompt_bytes(static_cast<uint32_t>(limits_.max_prompt_bytes));
  l->set_max_steps(static_cast<uint32_t>(info.num_train_timesteps));
  return m;
}

grpc::ServerUnaryReactor* VqDiffusionService::GetModelInfo(grpc::CallbackServerContext* context,
                                                           const v1::GetModelInfoRequest*, v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Status status = CheckBearerToken(*context, auth_token_);
  if (status.ok()) *response = ModelInfo();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace vqd::server
