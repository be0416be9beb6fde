#include "engine/engine.h"

#include <future>
#include <map>
#include <thread>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "pipeline/generate.h"

namespace vqd::engine {

Engine::Engine(const EngineOptions& options, EngineObserver* observer)
    : options_(options),
      observer_(observer),
      queue_(options.max_queue, options.priority_aging, [observer](size_t size) {
        if (observer) observer->OnQueueDepth(static_cast<int64_t>(size));
      }) {}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const std::string& model_dir, const EngineOptions& options,
                                                       EngineObserver* observer) {
  if (options.devices.empty()) return absl::InvalidArgumentError("no devices to run on");
  if (options.max_batch_rows < 1) return absl::InvalidArgumentError("max batch rows must be at least 1");
  if (options.max_queue < 1) return absl::InvalidArgumentError("max queue must be at least 1");
  if (options.priority_aging < absl::ZeroDuration()) return absl::InvalidArgumentError("priority aging must be >= 0");
  if (options.budget_recovery_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the row budget's recovery interval must be positive");
  }
  std::unique_ptr<Engine> engine(new Engine(options, observer));

  // One pipeline per device, loaded concurrently (each reads the files itself).
  std::vector<std::future<absl::StatusOr<std::unique_ptr<pipeline::VqDiffusionPipeline>>>> loads;
  for (const torch::Device& device : options.devices) {
    pipeline::PipelineOptions po;
    po.device = device;
    po.dtype = options.dtype;
    po.variant = options.variant;
    po.fused = options.fused;
    po.graph_max_rows = options.max_batch_rows;  // the fast path's CUDA graphs cover the row budget
    loads.push_back(std::async(std::launch::async, [model_dir, po] {
      return pipeline::VqDiffusionPipeline::Load(model_dir, po);
    }));
  }
  engine->output_pool_ = std::make_unique<ThreadPool>(std::max(1, options.output_threads));
  engine->load_board_ = std::make_unique<LoadBoard>(loads.size());
  WorkerOptions worker_options;
  worker_options.max_batch_rows = options.max_batch_rows;
  worker_options.budget_recovery_interval = options.budget_recovery_interval;
  worker_options.faults = options.faults;
  worker_options.load_board = engine->load_board_.get();
  absl::Status first_error;
  std::map<std::string, int> seen;
  for (size_t i = 0; i < loads.size(); ++i) {
    const std::string device = options.devices[i].str();
    const int repeat = seen[device]++;
    worker_options.name = repeat == 0 ? device : absl::StrCat(device, "#", repeat);
    worker_options.index = static_cast<int>(i);
    auto loaded = loads[i].get();
    if (!loaded.ok()) {
      if (first_error.ok()) first_error = Annotate(loaded.status(), absl::StrCat("device ", options.devices[i].str()));
      continue;
    }
    engine->workers_.push_back(std::make_unique<DeviceWorker>(std::move(*loaded), &engine->queue_, worker_options,
                                                              observer, engine->output_pool_.get()));
  }
  if (!first_error.ok()) return first_error;
  for (auto& worker : engine->workers_) worker->Start();
  return engine;
}

Engine::~Engine() { Shutdown(absl::UnavailableError("the server is shutting down")); }

absl::Status Engine::Submit(const std::shared_ptr<GenerationRequest>& request) {
  // The steps must be the ones the stride implies (the server's validation fills them in).
  const RequestParams& p = request->params();
  int64_t chain = 0;
  if (p.edit) {
    absl::StatusOr<int64_t> edit_chain = pipeline::EditChainLength(p.edit->strength, info());
    if (!edit_chain.ok()) return edit_chain.status();
    chain = *edit_chain;
  }
  absl::StatusOr<int64_t> steps = pipeline::StepsForStride(p.steps, p.time_stride, info(), chain);
  if (!steps.ok()) return steps.status();
  if (absl::Status prior = pipeline::CheckPrior(p.prior_rule, p.prior_weight); !prior.ok()) return prior;
  if (request->rows() > options_.max_batch_rows) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_images: ", request->params().num_images, " images", request->params().guided() ? " with guidance" : "",
        " need ", request->rows(), " transformer rows per step; this server runs at most ", options_.max_batch_rows));
  }
  // Counted from before the push (a worker may answer it at once) until it is answered.
  unfinished_->fetch_add(1);
  request->SetFinishHook([unfinished = unfinished_] { unfinished->fetch_sub(1); });
  absl::StatusOr<size_t> position = queue_.Push(request, [&](size_t pos) {
    request->Deliver(QueuedEvent{static_cast<int64_t>(pos)});
  });
  if (!position.ok()) {  // no other thread saw it; the caller answers it
    request->SetFinishHook({});
    unfinished_->fetch_sub(1);
  }
  return position.status();
}

void Engine::Cancel(const std::shared_ptr<GenerationRequest>& request) {
  request->Cancel();
  if (!queue_.Remove(request.get())) {
    queue_.Wake();  // a running request: its worker drops it at the next step boundary
    return;
  }
  const Clock::time_point now = Clock::now();
  const Outcome outcome = request->CancellationOutcome(now);
  const absl::Status status = outcome == Outcome::kDeadline
                                  ? absl::DeadlineExceededError("the request's deadline passed while queued")
                                  : absl::CancelledError("the client cancelled the request while it was queued");
  request->Fail(status, outcome, [&] {
    const RequestTimings timings = request->Timings(now);
    spdlog::info("request {} finished: outcome={} while queued, queue={:.3f}s", request->id(), OutcomeName(outcome),
                 timings.queue_seconds);
    if (observer_) observer_->OnRequestFinished(request->id(), outcome, timings, 0, status);
  });
}

void Engine::StopIntake() {
  queue_.Close();
}

bool Engine::WaitUntilIdle(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (unfinished_->load() == 0) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return unfinished_->load() == 0;
}

void Engine::Shutdown(const absl::Status& reason) {
  if (shut_down_) return;
  shut_down_ = true;
  queue_.Close();
  for (auto& r : queue_.TakeAll()) {
    r->Fail(reason, Outcome::kError, [&] {
      spdlog::info("request {} finished: outcome=error while queued: {}", r->id(), std::string(reason.message()));
      if (observer_) observer_->OnRequestFinished(r->id(), Outcome::kError, r->Timings(Clock::now()), 0, reason);
    });
  }
  for (auto& worker : workers_) worker->Stop(reason);
  output_pool_.reset();  // delivers what was already decoded
}

std::vector<std::string> Engine::device_names() const {
  std::vector<std::string> names;
  for (const auto& w : workers_) names.push_back(w->device_name());
  return names;
}

int64_t Engine::active_requests() const {
  int64_t n = 0;
  for (const auto& w : workers_) n += w->active_requests();
  return n;
}

}  // namespace vqd::engine
