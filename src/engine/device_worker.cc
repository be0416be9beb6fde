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

// After this many consecutive good steps at a budget lowered by out-of-memory, try a larger one.
constexpr int kStepsBeforeRaisingBudget = 200;

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
  int good_steps = 0;
  while (!stop_.load()) {
    DropStopped();
    Admit();
    if (batcher_.empty()) {
      queue_->WaitForWork(absl::Milliseconds(100));
      continue;
    }
    const int64_t budget_before = row_budget_.load();
    Step();
    if (row_budget_.load() < budget_before) {
      good_steps = 0;
    } else if (row_budget_.load() < options_.max_batch_rows && ++good_steps >= kStepsBeforeRaisingBudget) {
      good_steps = 0;
      row_budget_.store(std::min(options_.max_batch_rows,
                                 row_budget_.load() + std::max<int64_t>(1, options_.max_batch_rows / 8)));
      spdlog::info("worker {}: raising the row budget to {}", device_name_, row_budget_.load());
    }
  }
  for (auto& r : batcher_.TakeAll()) FailRequest(r, stop_status_, Outcome::kError);
  PublishLoad();
}

void DeviceWorker::PublishLoad() {
  active_rows_.store(batcher_.active_rows());
  active_requests_.store(static_cast<int64_t>(batcher_.active().size()));
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
    FailRequest(r, outcome == Outcome::kDeadline ? absl::DeadlineExceededError("the request's deadline passed")
                                                 : absl::CancelledError("the client cancelled the request"),
                outcome);
  }
  PublishLoad();  // an idle worker must not keep reporting the requests it dropped
}

void DeviceWorker::Admit() {
  const int64_t free_rows = row_budget_.load() - batcher_.active_rows();
  if (free_rows <= 0) return;
  std::vector<std::shared_ptr<GenerationRequest>> dropped;
  std::vector<std::shared_ptr<GenerationRequest>> admitted = queue_->PopFitting(free_rows, &dropped);
  const Clock::time_point now = Clock::now();
  for (auto& r : dropped) {
    const Outcome outcome = r->CancellationOutcome(now);
    FailRequest(r, outcome == Outcome::kDeadline ? absl::DeadlineExceededError("the request's deadline passed while queued")
                                                 : absl::CancelledError("the client cancelled the request"),
                outcome);
  }
  if (admitted.empty()) return;
  const pipeline::PipelineInfo& info = pipeline_->info();
  for (auto& r : admitted) {
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
    });
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
  PublishLoad();
}

std::vector<std::pair<std::shared_ptr<GenerationRequest>, absl::Status>> DeviceWorker::RunStep(
    const std::vector<std::shared_ptr<GenerationRequest>>& requests) {
  // A step replaces each group's tokens and advances its generator; keep both to undo a failure.
  // (The generator's state, not a clone: libtorch 1.13 leaks every clone.)
  struct Saved {
    torch::Tensor tokens;
    torch::Tensor generator_state;
  };
  std::vector<Saved> saved;
  saved.reserve(requests.size());
  for (const auto& r : requests) saved.push_back({r->group.tokens, r->generator->get_state()});

  absl::Status status;
  if (options_.fault_hook) {
    std::vector<const GenerationRequest*> batch;
    for (const auto& r : requests) batch.push_back(r.get());
    status = options_.fault_hook(batch);
  }
  if (status.ok()) {
    std::vector<pipeline::SampleGroup*> groups;
    for (const auto& r : requests) groups.push_back(&r->group);
    status = pipeline_->DenoiseStep(groups);
  }
  if (status.ok()) return {};

  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i]->group.tokens = saved[i].tokens;
    requests[i]->generator->set_state(saved[i].generator_state);
  }
  const bool oom = IsOutOfMemoryMessage(status.message());
  if (requests.size() == 1) {
    spdlog::warn("worker {}: step failed for request {}: {}", device_name_, requests[0]->id(), std::string(status.message()));
    return {{requests[0], oom ? absl::ResourceExhaustedError(absl::StrCat(
                                    "out of device memory even running alone on ", device_name_, ": ", status.message()))
                              : status}};
  }
  int64_t rows = 0;
  for (const auto& r : requests) rows += r->rows();
  if (oom) {
    const int64_t lowered = std::max<int64_t>(1, std::min(row_budget_.load(), rows / 2));
    row_budget_.store(lowered);
    spdlog::warn("worker {}: out of memory at {} rows; retrying in halves and admitting at most {} rows per step",
                 device_name_, rows, lowered);
  } else {
    spdlog::warn("worker {}: step of {} requests failed ({}); retrying in halves to isolate the cause", device_name_,
                 requests.size(), std::string(status.message()));
  }
  const size_t half = requests.size() / 2;
  std::vector<std::shared_ptr<GenerationRequest>> first(requests.begin(), requests.begin() + static_cast<long>(half));
  std::vector<std::shared_ptr<GenerationRequest>> second(requests.begin() + static_cast<long>(half), requests.end());
  auto failures = RunStep(first);
  auto more = RunStep(second);
  failures.insert(failures.end(), more.begin(), more.end());
  return failures;
}

void DeviceWorker::Step() {
  batcher_.Plan();  // sets each group's timestep
  const std::vector<std::shared_ptr<GenerationRequest>> requests = batcher_.active();
  const Clock::time_point start = Clock::now();
  for (const auto& r : requests) {
    if (r->steps_done == 0) r->first_step_at = start;
  }
  const int64_t rows = batcher_.active_rows();
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
    event.grids = grids.narrow(0, offset, n);
    offset += n;
    event.masked_fraction = event.grids.eq(info.codebook_size).to(torch::kFloat32).mean().item<float>();
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

void DeviceWorker::FinishRequests(std::vector<std::shared_ptr<GenerationRequest>> finished) {
  const pipeline::PipelineInfo& info = pipeline_->info();
  const Clock::time_point start = Clock::now();
  std::vector<torch::Tensor> grids;
  for (const auto& r : finished) grids.push_back(r->group.tokens);
  absl::StatusOr<torch::Tensor> images = absl::InternalError("not decoded");
  torch::Tensor tokens_cpu;
  absl::Status status = CatchTorch("collecting final grids", [&] {
    torch::Tensor all = torch::cat(grids, 0);
    tokens_cpu = all.to(torch::kCPU);
    images = pipeline_->Decode(all);
  });
  if (!status.ok()) images = status;
  if (!images.ok()) {
    for (auto& r : finished) FailRequest(r, images.status(), Outcome::kError);
    return;
  }
  torch::Tensor pixels = pipeline::ImagesToUint8(*images, info.dtype);  // [B, H, W, 3]
  const double decode_seconds = SecondsSince(start);
  int64_t offset = 0;
  for (auto& r : finished) {
    const int64_t n = r->params().num_images;
    torch::Tensor request_pixels = pixels.narrow(0, offset, n);
    torch::Tensor request_tokens = tokens_cpu.narrow(0, offset, n);
    offset += n;
    r->group = pipeline::SampleGroup{};  // free device memory now
    r->generator.reset();
    // PNG encoding and delivery off the device thread.
    output_pool_->Submit([this, r, request_pixels, request_tokens, decode_seconds, info]() {
      const Clock::time_point png_start = Clock::now();
      for (int64_t i = 0; i < request_pixels.size(0); ++i) {
        torch::Tensor image = request_pixels[i].contiguous();
        auto png = io::EncodePng(image.data_ptr<uint8_t>(), static_cast<int>(info.image_width),
                                 static_cast<int>(info.image_height), 3);
        if (!png.ok()) {
          FailRequest(r, png.status(), Outcome::kError);
          return;
        }
        ImageEvent event;
        event.index = i;
        event.png = std::move(*png);
        event.width = info.image_width;
        event.height = info.image_height;
        event.seed = r->params().seed;
        event.grid = request_tokens[i].contiguous();
        event.grid_height = info.grid_height;
        event.grid_width = info.grid_width;
        r->Deliver(std::move(event));
      }
      r->decode_seconds = decode_seconds + SecondsSince(png_start);
      if (observer_) observer_->OnDecoded(r->decode_seconds, r->params().num_images);
      const RequestTimings timings = r->Timings(Clock::now());
      r->Complete(DoneEvent{timings, r->params().steps}, [&] {
        spdlog::info(
            "request {} finished: outcome=ok images={} steps={} queue={:.3f}s encode={:.3f}s denoise={:.3f}s "
            "decode={:.3f}s total={:.3f}s device={}",
            r->id(), r->params().num_images, r->params().steps, timings.queue_seconds, timings.encode_seconds,
            timings.denoise_seconds, timings.decode_seconds, timings.total_seconds, device_name_);
        if (observer_) {
          observer_->OnRequestFinished(r->id(), Outcome::kOk, timings, r->params().num_images, absl::OkStatus());
        }
      });
    });
  }
}

}  // namespace vqd::engine
