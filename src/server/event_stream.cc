#include "server/event_stream.h"

#include <variant>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
namespace vqd::server {
namespace v1 = vqdiffusion::v1;

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {

void FillGrid(const torch::Tensor& grid, int64_t height, int64_t width, v1::TokenGrid* out) {
  out->set_height(static_cast<uint32_t>(height));
  out->set_width(static_cast<uint32_t>(width));
  torch::Tensor flat = grid.contiguous().view({-1});
  const int64_t* data = flat.data_ptr<int64_t>();
  auto* tokens = out->mutable_tokens();
  tokens->Reserve(static_cast<int>(flat.numel()));
  for (int64_t i = 0; i < flat.numel(); ++i) tokens->Add(static_cast<uint32_t>(data[i]));
}

}  // namespace

v1::GenerateEvent ToProto(const engine::RequestEvent& event, const std::string& request_id) {
  v1::GenerateEvent out;
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, engine::QueuedEvent>) {
          out.mutable_queued()->set_request_id(request_id);
          out.mutable_queued()->set_position(static_cast<uint32_t>(e.position));
        } else if constexpr (std::is_same_v<T, engine::StartedEvent>) {
          out.mutable_started()->set_request_id(request_id);
          out.mutable_started()->set_device(e.device);
          out.mutable_started()->set_seed(e.seed);
        } else if constexpr (std::is_same_v<T, engine::ProgressEvent>) {
          v1::Progress* p = out.mutable_progress();
          p->set_step(static_cast<uint32_t>(e.step));
          p->set_total_steps(static_cast<uint32_t>(e.total_steps));
          p->set_timestep(static_cast<uint32_t>(e.timestep));
          p->set_masked_fraction(e.masked_fraction);
          for (int64_t i = 0; i < e.grids.size(0); ++i) FillGrid(e.grids[i], e.grid_height, e.grid_width, p->add_grids());
        } else if constexpr (std::is_same_v<T, engine::PreviewEvent>) {
          v1::Preview* p = out.mutable_preview();
          p->set_step(static_cast<uint32_t>(e.step));
          p->set_total_steps(static_cast<uint32_t>(e.total_steps));
          p->set_timestep(static_cast<uint32_t>(e.timestep));
          p->set_width(static_cast<uint32_t>(e.width));
          p->set_height(static_cast<uint32_t>(e.height));
          for (const std::string& png : e.pngs) p->add_pngs(png);
        } else if constexpr (std::is_same_v<T, engine::ImageEvent>) {
          v1::Image* img = out.mutable_image();
          img->set_index(static_cast<uint32_t>(e.index));
          img->set_png(e.png);
          img->set_width(static_cast<uint32_t>(e.width));
          img->set_height(static_cast<uint32_t>(e.height));
          img->set_seed(e.seed);
          FillGrid(e.grid, e.grid_height, e.grid_width, img->mutable_grid());
        } else if constexpr (std::is_same_v<T, engine::DoneEvent>) {
          v1::Done* d = out.mutable_done();
          d->set_request_id(request_id);
          d->set_queue_seconds(e.timings.queue_seconds);
          d->set_encode_seconds(e.timings.encode_seconds);
          d->set_denoise_seconds(e.timings.denoise_seconds);
          d->set_decode_seconds(e.timings.decode_seconds);
          d->set_total_seconds(e.timings.total_seconds);
          d->set_steps(static_cast<uint32_t>(e.steps));
        }
      },
      event);
  return out;
}

void EventStream::Deliver(engine::RequestEvent event) {
  const bool done = std::holds_alternative<engine::DoneEvent>(event);
  v1::GenerateEvent message = ToProto(event, request_id_);
  Action action;
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    if (final_status_) return;
    const int64_t waiting = pending_bytes_ + in_flight_bytes_;
    const int64_t bytes = static_cast<int64_t>(message.ByteSizeLong());
    if (!Enqueue(std::move(message))) {
      MarkServerCancelled("buffer_full", absl::StrCat("the client is not reading its stream: ", waiting,
                                                      " bytes are waiting and ", bytes, " more would exceed the limit of ",
                                                      max_pending_bytes_));
      cancel = true;
      action = Pump();  // finishes at once if no write is waiting for the client
    } else {
      if (done) final_status_ = grpc::Status::OK;
      action = Pump();
    }
  }
  Run(action);
  if (cancel) CancelCall();
}

void EventStream::MarkServerCancelled(const std::string& reason, const std::string& message) {
  spdlog::warn("request {}: {}; cancelling the call", request_id_, message);
  cancel_reason_ = reason;
  final_status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, message);
  pending_.clear();
  pending_bytes_ = 0;
  if (on_server_cancel_) on_server_cancel_(reason);
}

void EventStream::CancelCall() {
  // TryCancel ends the stalled write (OnWriteDone(false)), which lets Finish run, and makes gRPC
  // call OnCancel, which cancels the request in the engine.
  std::lock_guard<std::recursive_mutex> lock(context_mu_);
  if (context_ != nullptr) context_->TryCancel();
}

std::optional<int64_t> EventStream::CancelIfStalled(std::chrono::steady_clock::time_point now,
                                                    absl::Duration timeout) {
  int64_t waiting = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!writing_ || detached_ || cancel_reason_) return std::nullopt;
    if (now - write_started_ < absl::ToChronoNanoseconds(timeout)) return std::nullopt;
    waiting = pending_bytes_ + in_flight_bytes_;
    MarkServerCancelled("stalled", absl::StrCat("the client accepted no data for ", absl::FormatDuration(timeout),
                                                " (", waiting, " bytes waiting)"));
  }
  CancelCall();
  return waiting;
}

bool EventStream::detached() const {
  absl::MutexLock lock(&mu_);
  return detached_;
}


void EventStream::Fail(const absl::Status& status, engine::Outcome) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (final_status_) return;
    final_status_ = ToGrpcStatus(status);
    // A failed request's pending progress is of no use to the client; images already made are.
    std::deque<v1::GenerateEvent> kept;
    pending_bytes_ = 0;
    for (auto& e : pending_) {
      if (e.has_progress()) continue;
      pending_bytes_ += static_cast<int64_t>(e.ByteSizeLong());
      kept.push_back(std::move(e));
    }
    pending_ = std::move(kept);
    action = Pump();
  }
  Run(action);
}

bool EventStream::Enqueue(v1::GenerateEvent event) {
  const int64_t bytes = static_cast<int64_t>(event.ByteSizeLong());
  // Coalesce: a progress event waiting behind a slow client is replaced by the newer one.
  const bool replaces = event.has_progress() && !pending_.empty() && pending_.back().has_progress();
  const int64_t replaced = replaces ? static_cast<int64_t>(pending_.back().ByteSizeLong()) : 0;
  if (pending_bytes_ - replaced + bytes + in_flight_bytes_ > max_pending_bytes_) return false;
  pending_bytes_ += bytes - replaced;
  if (replaces) {
    pending_.back() = std::move(event);
  } else {
    pending_.push_back(std::move(event));
  }
  return true;
}

EventStream::Action EventStream::Pump() {
  Action action;
  if (reactor_ == nullptr || writing_ || finish_called_) return action;
  if (!pending_.empty()) {
    in_flight_ = std::move(pending_.front());
    pending_.pop_front();
    in_flight_bytes_ = static_cast<int64_t>(in_flight_.ByteSizeLong());
    pending_bytes_ -= in_flight_bytes_;
    write_started_ = std::chrono::steady_clock::now();
    writing_ = true;
    action.reactor = reactor_;
    action.write = &in_flight_;  // untouched until OnWriteDone clears writing_
  } else if (final_status_) {
    finish_called_ = true;
    action.reactor = reactor_;
    action.finish = *final_status_;
  }
  return action;
}

void EventStream::Run(const Action& action) {
  // The reactor outlives this call: gRPC calls OnDone (which detaches it) only after Finish,
  // and Finish is issued at most once, here.
  if (action.reactor == nullptr) return;
  if (action.write != nullptr) {
    action.reactor->StartWrite(action.write);
  } else if (action.finish) {
    action.reactor->Finish(*action.finish);
  }
}

void EventStream::Attach(GenerateReactor* reactor, grpc::CallbackServerContext* context) {
  {
    std::lock_guard<std::recursive_mutex> lock(context_mu_);
    context_ = context;
  }
  Action action;
  {
    absl::MutexLock lock(&mu_);
    reactor_ = reactor;
    action = Pump();
  }
  Run(action);
}

void EventStream::OnWriteDone(bool ok) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    in_flight_bytes_ = 0;
    if (!ok) {
      // The client is gone; gRPC also reports it through OnCancel, which cancels the request.
      pending_.clear();
      pending_bytes_ = 0;
      if (!final_status_) final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    action = Pump();
  }
  Run(action);
}

void EventStream::Detach() {
  {
    std::lock_guard<std::recursive_mutex> lock(context_mu_);
    context_ = nullptr;
  }
  absl::MutexLock lock(&mu_);
  reactor_ = nullptr;
  detached_ = true;
  pending_.clear();
  pending_bytes_ = 0;
  if (!final_status_) final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the call ended");
}

void EventStream::FinishNow(const grpc::Status& status) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (final_status_) return;
    final_status_ = status;
    pending_.clear();
    pending_bytes_ = 0;
    action = Pump();
  }
  Run(action);
}

GenerateReactor::GenerateReactor(std::shared_ptr<EventStream> stream, std::function<void()> on_cancel)
    : stream_(std::move(stream)), on_cancel_(std::move(on_cancel)) {}

void GenerateReactor::OnCancel() {
  if (on_cancel_) on_cancel_();
}

void GenerateReactor::OnDone() {
  stream_->Detach();
  delete this;
}

}  // namespace vqd::server
