#include "server/event_stream.h"

#include <variant>

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
  {
    absl::MutexLock lock(&mu_);
    if (final_status_) return;
    Enqueue(std::move(message));
    if (done) final_status_ = grpc::Status::OK;
    action = Pump();
  }
  Run(action);
}

void EventStream::Fail(const absl::Status& status, engine::Outcome) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (final_status_) return;
    final_status_ = ToGrpcStatus(status);
    // A failed request's pending progress is of no use to the client; images already made are.
    std::deque<v1::GenerateEvent> kept;
    for (auto& e : pending_) {
      if (!e.has_progress()) kept.push_back(std::move(e));
    }
    pending_ = std::move(kept);
    action = Pump();
  }
  Run(action);
}

void EventStream::Enqueue(v1::GenerateEvent event) {
  // Coalesce: a progress event waiting behind a slow client is replaced by the newer one.
  if (event.has_progress() && !pending_.empty() && pending_.back().has_progress()) {
    pending_.back() = std::move(event);
    return;
  }
  pending_.push_back(std::move(event));
}

EventStream::Action EventStream::Pump() {
  Action action;
  if (reactor_ == nullptr || writing_ || finish_called_) return action;
  if (!pending_.empty()) {
    in_flight_ = std::move(pending_.front());
    pending_.pop_front();
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

void EventStream::Attach(GenerateReactor* reactor) {
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
    if (!ok) {
      // The client is gone; gRPC also reports it through OnCancel, which cancels the request.
      pending_.clear();
      if (!final_status_) final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    }
    action = Pump();
  }
  Run(action);
}

void EventStream::Detach() {
  absl::MutexLock lock(&mu_);
  reactor_ = nullptr;
  pending_.clear();
  if (!final_status_) final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the call ended");
}

void EventStream::FinishNow(const grpc::Status& status) {
  Action action;
  {
    absl::MutexLock lock(&mu_);
    if (final_status_) return;
    final_status_ = status;
    pending_.clear();
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
