#include "engine/device_worker.h"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "base/device_scope.h"
#include "base/torch_util.h"
#include "diffusion/gumbel_sampler.h"
#include "io/png.h"
#include "pipeline/generate.h"

namespace vqd::engine {
namespace {

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// How long an idle worker sleeps before it looks again when nothing changes (the budget's
// recovery, a request another device was expected to take).
constexpr absl::Duration kIdleWait = absl::Milliseconds(100);

absl::Status CancellationStatus(Outcome outcome, absl::string_view where) {
  return outcome == Outcome::kDeadline
             ? absl::DeadlineExceededError(absl::StrCat("the request's deadline passed", where))
             : absl::CancelledError("the client cancelled the request");
}

}  // namespace

DeviceWorker::DeviceWorker(std::unique_ptr<pipeline::VqDiffusionPipeline> pipeline, RequestQueue* queue,
                           WorkerOptions options, EngineObserver* observer, ThreadPool* output_pool)
    : pipeline_(std::move(pipeline)),
      queue_(queue),
      options_(std::move(options)),
      observer_(observer),
      output_pool_(output_pool),
      device_name_(options_.name.empty() ? pipeline_->info().device.str() : options_.name),
      batcher_(options_.max_batch_rows),
      row_budget_(options_.max_batch_rows) {}

DeviceWorker::~DeviceWorker() { Stop(absl::UnavailableError("the server is shutting down")); }

void DeviceWorker::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void DeviceWorker::Stop(const absl::Status& status) {
  if (!thread_.joinable()) return;
  stop_status_ = status;
  stop_.store(true);
  queue_->Wake();
  thread_.join();
}

void DeviceWorker::Loop() {
  // This thread's device and stream for everything it runs, for its whole life.
  std::optional<DeviceScope> scope;
  if (absl::Status s = CatchTorch("selecting the device", [&] { scope.emplace(pipeline_->info().device); }); !s.ok()) {
    spdlog::error("worker {}: {}", device_name_, std::string(s.message()));
  }
  spdlog::info("worker {}: running, up to {} transformer rows per step", device_name_, options_.max_batch_rows);
  PublishLoad();
  while (!stop_.load()) {
    const uint64_t seen = queue_->version();  // before looking, so no push is missed
    RecoverBudget();
    DropStopped();
    Admit();
    if (batcher_.empty()) {
      queue_->WaitForChange(seen, kIdleWait);
      continue;
    }
    Step();
  }
  for (auto& r : batcher_.TakeAll()) FailRequest(r, stop_status_, Outcome::kError);
  if (options_.load_board) options_.load_board->Retire(static_cast<size_t>(options_.index));
  queue_->Wake();  // workers deferring to this one look again
  PublishLoad();
}

void DeviceWorker::RecoverBudget() {
  const int64_t budget = row_budget_.load();
  if (budget >= options_.max_batch_rows) return;
  const Clock::time_point now = Clock::now();
  if (now - budget_changed_at_ < absl::ToChronoNanoseconds(options_.budget_recovery_interval)) return;
  row_budget_.store(std::min(options_.max_batch_rows, budget + std::max<int64_t>(1, options_.max_batch_rows / 8)));
  budget_changed_at_ = now;
  spdlog::info("worker {}: no out-of-memory for {}; raising the row budget to {}", device_name_,
               absl::FormatDuration(options_.budget_recovery_interval), row_budget_.load());
}

void DeviceWorker::PublishLoad() {
  active_rows_.store(batcher_.active_rows());
  active_requests_.store(static_cast<int64_t>(batcher_.active().size()));
  if (options_.load_board) {
    const int64_t rows = batcher_.active_rows() + admitting_rows_;
    if (options_.load_board->Publish(static_cast<size_t>(options_.index), rows, row_budget_.load() - rows) &&
        options_.load_board->size() > 1) {
      queue_->Wake();  // a worker deferring to this one may now be the least loaded
    }
  }
  if (observer_) observer_->OnActive(device_name_, active_requests_.load(), batcher_.active_images());
}

void DeviceWorker::FailRequest(const std::shared_ptr<GenerationRequest>& request, const absl::Status& status,
                               Outcome outcome) {
  request->Fail(status, outcome, [&] {
    const RequestTimings timings = request->Timings(Clock::now());
    spdlog::info("request {} finished: outcome={} status=\"{}\" queue={:.3f}s total={:.3f}s steps={}/{} device={}",
                 request->id(), OutcomeName(outcome), std::string(status.message()), timings.queue_seconds,
                 timings.total_seconds, request->steps_done, request->params().steps, device_name_);
    if (observer_) observer_->OnRequestFinished(request->id(), outcome, timings, 0, status);
  });
}

void DeviceWorker::DropStopped() {
  const Clock::time_point now = Clock::now();
  std::vector<std::shared_ptr<GenerationRequest>> stopped = batcher_.RemoveStopped(now);
  if (stopped.empty()) return;
  for (auto& r : stopped) {
    const Outcome outcome = r->CancellationOutcome(now);
    FailRequest(r, CancellationStatus(outcome, ""), outcome);
  }
  PublishLoad();  // an idle worker must not keep reporting the requests it dropped
}

void DeviceWorker::Admit() {
  std::vector<std::shared_ptr<GenerationRequest>> dropped;
  std::vector<std::shared_ptr<GenerationRequest>> admitted;
  admitting_rows_ = 0;
  for (;;) {
    const int64_t used = batcher_.active_rows() + admitting_rows_;
    const int64_t free_rows = row_budget_.load() - used;
    std::shared_ptr<GenerationRequest> r = queue_->PopHeadIf(
        [&](const GenerationRequest& head) {
          // An idle device takes the head even above a budget lowered by out-of-memory: alone it
          // either runs after all or fails with RESOURCE_EXHAUSTED, instead of blocking the queue.
          if (used > 0 && head.rows() > free_rows) return false;
          return options_.load_board == nullptr ||
                 options_.load_board->IsLeastLoaded(static_cast<size_t>(options_.index), head.rows());
        },
        &dropped);
    if (!r) break;
    admitting_rows_ += r->rows();
    admitted.push_back(std::move(r));
    PublishLoad();  // the other devices see this one's new load before they look at the queue again
  }
  const Clock::time_point now = Clock::now();
  for (auto& r : dropped) {
    const Outcome outcome = r->CancellationOutcome(now);
    FailRequest(r, CancellationStatus(outcome, " while queued"), outcome);
  }
  if (admitted.empty()) return;
  const pipeline::PipelineInfo& info = pipeline_->info();
  for (auto& r : admitted) {
    admitting_rows_ -= r->rows();
    r->admitted_at = Clock::now();
    const RequestParams& p = r->params();
    auto encoding = pipeline_->EncodeCondition(p.prompt, p.class_label);
    r->encode_seconds = SecondsSince(r->admitted_at);
    if (observer_) observer_->OnTextEncoded(r->encode_seconds);
    if (!encoding.ok()) {
      FailRequest(r, encoding.status(), Outcome::kError);
      continue;
    }
    absl::Status status = CatchTorch("preparing the request's samples", [&] {
      r->generator = std::make_unique<torch::Generator>(diffusion::MakeGenerator(info.device, p.seed));
      r->group.prompt = *encoding;
      r->group.tokens = pipeline_->MaskedTokens(p.num_images);
      r->group.guidance_scale = p.guidance_scale;
      r->group.truncation_rate = p.truncation_rate;
      r->group.generator = r->generator.get();
      r->group.prior_rule = p.prior_rule;
      r->group.prior_weight = p.prior_weight;
      const int64_t chain = p.edit ? *pipeline::EditChainLength(p.edit->strength, info) : 0;
      r->plan = pipeline::PlanSteps(p.steps, p.time_stride, info, chain);
    });
    if (status.ok() && p.edit) {  // the image's encoding and noising, on this device
      absl::StatusOr<pipeline::EditStart> start =
          pipeline::PrepareEdit(*pipeline_, *p.edit, p.num_images, r->plan.front().timestep, *r->generator);
      if (start.ok()) {
        r->group.tokens = start->tokens;
        r->group.known_tokens = start->known_tokens;
        r->group.known = start->known;
      } else {
        status = start.status();
      }
    }
    if (!status.ok()) {
      FailRequest(r, status, Outcome::kError);
      continue;
    }
    r->started = true;
    r->Deliver(StartedEvent{device_name_, p.seed});
    spdlog::debug("request {} admitted on {} ({} rows, queued {:.3f}s)", r->id(), device_name_, r->rows(),
                  std::chrono::duration<double>(r->admitted_at - r->accepted_at).count());
    batcher_.Add(std::move(r));
  }
  admitting_rows_ = 0;
  PublishLoad();
}

std::vector<std::pair<std::shared_ptr<GenerationRequest>, absl::Status>> DeviceWorker::RunStep(
    const std::vector<std::shared_ptr<GenerationRequest>>& requests) {
  std::vector<std::pair<std::shared_ptr<GenerationRequest>, absl::Status>> failures;
  // A step replaces each group's tokens and advances its generator; keep both to undo a failure.
  // (The generator's state, not a clone: libtorch 1.13 leaks every clone.)
  struct Saved {
    std::shared_ptr<GenerationRequest> request;
    torch::Tensor tokens;
    torch::Tensor generator_state;
  };
  std::vector<Saved> saved;
  saved.reserve(requests.size());
  for (const auto& r : requests) {
    Saved entry{r, r->group.tokens, {}};
    absl::Status s = CatchTorch("saving the request's generator state",
                                [&] { entry.generator_state = r->generator->get_state(); });
    if (s.ok()) {
      saved.push_back(std::move(entry));
    } else {
      failures.emplace_back(r, s);
    }
  }
  if (saved.empty()) return failures;

  absl::Status status;
  if (options_.faults.step) {
    std::vector<const GenerationRequest*> batch;
    for (const auto& e : saved) batch.push_back(e.request.get());
    status = options_.faults.step(batch);
  }
  if (status.ok()) {
    std::vector<pipeline::SampleGroup*> groups;
    for (const auto& e : saved) groups.push_back(&e.request->group);
    status = pipeline_->DenoiseStep(groups);
  }
  if (status.ok()) return failures;

  std::vector<std::shared_ptr<GenerationRequest>> restored;
  for (auto& e : saved) {
    e.request->group.tokens = e.tokens;
    absl::Status s = CatchTorch("restoring the request's generator state",
                                [&] { e.request->generator->set_state(e.generator_state); });
    if (s.ok()) {
      restored.push_back(e.request);
    } else {
      failures.emplace_back(e.request, s);
    }
  }
  if (restored.empty()) return failures;
  const bool oom = IsOutOfMemoryMessage(status.message());
  if (restored.size() == 1) {
    spdlog::warn("worker {}: step failed for request {}: {}", device_name_, restored[0]->id(), std::string(status.message()));
    failures.emplace_back(restored[0], oom ? absl::ResourceExhaustedError(absl::StrCat(
                                                 "out of device memory even running alone on ", device_name_, ": ",
                                                 status.message()))
                                           : status);
    return failures;
  }
  int64_t rows = 0;
  for (const auto& r : restored) rows += r->rows();
  if (oom) {
    const int64_t lowered = std::max<int64_t>(1, std::min(row_budget_.load(), rows / 2));
    row_budget_.store(lowered);
    budget_changed_at_ = Clock::now();
    spdlog::warn("worker {}: out of memory at {} rows; retrying in halves and running at most {} rows per step",
                 device_name_, rows, lowered);
  } else {
    spdlog::warn("worker {}: step of {} requests failed ({}); retrying in halves to isolate the cause", device_name_,
                 restored.size(), std::string(status.message()));
  }
  const size_t half = restored.size() / 2;
  std::vector<std::shared_ptr<GenerationRequest>> first(restored.begin(), restored.begin() + static_cast<long>(half));
  std::vector<std::shared_ptr<GenerationRequest>> second(restored.begin() + static_cast<long>(half), restored.end());
  for (auto* part : {&first, &second}) {
    auto more = RunStep(*part);
    failures.insert(failures.end(), more.begin(), more.end());
  }
  return failures;
}

void DeviceWorker::Step() {
  // Only what fits the row budget runs; after out-of-memory the others wait with their state.
  const std::vector<std::shared_ptr<GenerationRequest>> requests = batcher_.Plan(row_budget_.load());
  const Clock::time_point start = Clock::now();
  for (const auto& r : requests) {
    if (r->steps_done == 0) r->first_step_at = start;
  }
  const int64_t rows = batcher_.planned_rows();
  auto failures = RunStep(requests);
  const double seconds = SecondsSince(start);
  if (observer_) observer_->OnStep(device_name_, rows, static_cast<int64_t>(requests.size()), seconds);
  for (auto& [r, status] : failures) {
    FailRequest(r, absl::Status(status.code() == absl::StatusCode::kResourceExhausted ? status.code()
                                                                                      : absl::StatusCode::kInternal,
                                status.message()),
                Outcome::kError);
  }
  // Failed requests are finished; cancellations that arrived during the step leave now too.
  DropStopped();
  StepBatcher::StepOutcome outcome = batcher_.Commit();
  if (!outcome.progress_due.empty()) SendProgress(outcome.progress_due);
  if (!outcome.preview_due.empty()) SendPreviews(outcome.preview_due);
  const Clock::time_point end = Clock::now();
  for (auto& r : outcome.finished) r->last_step_at = end;
  PublishLoad();
  if (!outcome.finished.empty()) FinishRequests(std::move(outcome.finished));
}

void DeviceWorker::SendProgress(const std::vector<GenerationRequest*>& requests) {
  const pipeline::PipelineInfo& info = pipeline_->info();
  torch::Tensor grids;
  absl::Status status = CatchTorch("copying progress grids", [&] {
    std::vector<torch::Tensor> tokens;
    for (GenerationRequest* r : requests) tokens.push_back(r->group.tokens);
    grids = torch::cat(tokens, 0).to(torch::kCPU);
  });
  if (!status.ok()) {
    spdlog::warn("worker {}: no progress events this step: {}", device_name_, std::string(status.message()));
    return;
  }
  int64_t offset = 0;
  for (GenerationRequest* r : requests) {
    const int64_t n = r->params().num_images;
    ProgressEvent event;
    absl::Status s = CatchTorch("preparing a progress event", [&] {
      event.grids = grids.narrow(0, offset, n);
      event.masked_fraction = event.grids.eq(info.codebook_size).to(torch::kFloat32).mean().item<float>();
    });
    offset += n;
    if (!s.ok()) {
      spdlog::warn("request {}: no progress event this step: {}", r->id(), std::string(s.message()));
      continue;
    }
    event.step = r->steps_done;
    event.total_steps = r->params().steps;
    event.timestep = r->group.timestep;
    event.grid_height = info.grid_height;
    event.grid_width = info.grid_width;
    if (r->first_progress_seconds < 0) {
      r->first_progress_seconds = SecondsSince(r->admitted_at);
      if (observer_) observer_->OnFirstProgress(r->first_progress_seconds);
    }
    r->Deliver(std::move(event));
  }
}

void DeviceWorker::SendPreviews(const std::vector<GenerationRequest*>& requests) {
  const pipeline::PipelineInfo& info = pipeline_->info();
  for (GenerationRequest* r : requests) {
    absl::StatusOr<pipeline::PreviewImages> previews = absl::InternalError("no x_0 prediction");
    absl::Status status = CatchTorch("preparing a preview", [&] {
      if (!r->preview_x0.defined()) return;
      previews = pipeline::RenderPreviews(
          *pipeline_, pipeline::PreviewTokens(r->group.tokens, r->preview_x0, info.codebook_size));
    });
    r->preview_x0 = torch::Tensor();
    if (status.ok()) status = previews.status();
    if (!status.ok()) {
      spdlog::warn("request {}: no preview this step: {}", r->id(), std::string(status.message()));
      continue;
    }
    PreviewEvent event;
    event.step = r->steps_done;
    event.total_steps = r->params().steps;
    event.timestep = r->group.timestep;
    event.pngs = std::move(previews->pngs);
    event.width = previews->width;
    event.height = previews->height;
    r->Deliver(std::move(event));
  }
}

void DeviceWorker::FinishRequests(std::vector<std::shared_ptr<GenerationRequest>> finished) {
  for (auto& r : finished) FinishRequest(r);
}

void DeviceWorker::FinishRequest(const std::shared_ptr<GenerationRequest>& request) {
  // Each request is decoded on its own: a decoding fault fails only its request, and its images
  // do not depend on which other requests finished in the same step.
  const pipeline::PipelineInfo& info = pipeline_->info();
  const Clock::time_point start = Clock::now();
  torch::Tensor pixels;  // [n, H, W, 3] uint8 on the CPU
  torch::Tensor tokens;  // [n, grid] on the CPU
  absl::Status decoded = options_.faults.decode ? options_.faults.decode(*request) : absl::OkStatus();
  absl::Status status = CatchTorch("decoding the request's images", [&] {
    if (!decoded.ok()) return;
    tokens = request->group.tokens.to(torch::kCPU);
    absl::StatusOr<torch::Tensor> images = pipeline_->Decode(request->group.tokens);
    if (!images.ok()) {
      decoded = images.status();
      return;
    }
    pixels = pipeline::ImagesToUint8(*images, info.dtype).to(torch::kCPU);
  });
  if (status.ok()) status = decoded;
  request->group = pipeline::SampleGroup{};  // free device memory now
  request->generator.reset();
  if (!status.ok()) {
    FailRequest(request, status, Outcome::kError);
    return;
  }
  const double decode_seconds = SecondsSince(start);
  // PNG encoding and delivery off the device thread.
  output_pool_->Submit([this, request, pixels, tokens, decode_seconds] {
    DeliverImages(request, pixels, tokens, decode_seconds);
  });
}

void DeviceWorker::DeliverImages(const std::shared_ptr<GenerationRequest>& request, const torch::Tensor& pixels,
                                 const torch::Tensor& tokens, double decode_seconds) {
  const pipeline::PipelineInfo& info = pipeline_->info();
  const Clock::time_point png_start = Clock::now();
  std::vector<ImageEvent> events;
  absl::Status status = CatchTorch("encoding the request's images", [&] {
    for (int64_t i = 0; i < pixels.size(0); ++i) {
      torch::Tensor image = pixels[i].contiguous();
      auto png = io::EncodePng(image.data_ptr<uint8_t>(), static_cast<int>(info.image_width),
                               static_cast<int>(info.image_height), 3);
      if (!png.ok()) throw std::runtime_error(std::string(png.status().message()));
      ImageEvent event;
      event.index = i;
      event.png = std::move(*png);
      event.width = info.image_width;
      event.height = info.image_height;
      event.seed = request->params().seed;
      event.grid = tokens[i].contiguous();
      event.grid_height = info.grid_height;
      event.grid_width = info.grid_width;
      events.push_back(std::move(event));
    }
  });
  if (!status.ok()) {
    FailRequest(request, status, Outcome::kError);
    return;
  }
  for (auto& event : events) request->Deliver(std::move(event));
  request->decode_seconds = decode_seconds + SecondsSince(png_start);
  if (observer_) observer_->OnDecoded(request->decode_seconds, request->params().num_images);
  const RequestTimings timings = request->Timings(Clock::now());
  request->Complete(DoneEvent{timings, request->params().steps}, [&] {
    spdlog::info(
        "request {} finished: outcome=ok images={} steps={} queue={:.3f}s encode={:.3f}s denoise={:.3f}s "
        "decode={:.3f}s total={:.3f}s device={}",
        request->id(), request->params().num_images, request->params().steps, timings.queue_seconds,
        timings.encode_seconds, timings.denoise_seconds, timings.decode_seconds, timings.total_seconds, device_name_);
    if (observer_) {
      observer_->OnRequestFinished(request->id(), Outcome::kOk, timings, request->params().num_images,
                                   absl::OkStatus());
    }
  });
}

}  // namespace vqd::engine
