// The bridge between the engine and one Generate RPC. The engine delivers events from its
// threads (never blocking); the stream converts them to protobuf and writes them with the gRPC
// callback API, one write in flight at a time. Progress events that pile up behind a slow
// client are coalesced (only the newest is kept); images, Done and errors are never dropped.
//
// A client that stops reading cannot hold memory for long: the bytes waiting per stream are
// bounded, and a write the client has not accepted for the stalled-stream timeout (checked by
// StreamWatchdog) cancels the call. Cancelling the call cancels its request in the engine and
// drops what was waiting.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/request_types.h"
#include "vqdiffusion/v1/vqdiffusion.pb.h"

namespace vqd::server {

// Converts an engine event to the API's message.
vqdiffusion::v1::GenerateEvent ToProto(const engine::RequestEvent& event, const std::string& request_id);

class GenerateReactor;

class EventStream : public engine::EventSink {
 public:
  // `max_pending_bytes`: the most bytes of serialized events waiting for the client, the one
  // being written included; more cancels the call.
  explicit EventStream(std::string request_id, int64_t max_pending_bytes = int64_t{64} << 20)
      : request_id_(std::move(request_id)), max_pending_bytes_(max_pending_bytes) {}

  const std::string& request_id() const { return request_id_; }

  // engine::EventSink (engine threads).
  void Deliver(engine::RequestEvent event) override ABSL_LOCKS_EXCLUDED(mu_);
  void Fail(const absl::Status& status, engine::Outcome outcome) override ABSL_LOCKS_EXCLUDED(mu_);

  // Reactor side. `context` (may be null) is the call's, used to cancel it; valid until Detach.
  void Attach(GenerateReactor* reactor, grpc::CallbackServerContext* context = nullptr) ABSL_LOCKS_EXCLUDED(mu_);
  // A write finished; starts the next one or finishes the RPC. `ok` false: the client is gone.
  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  // The RPC is over (OnDone): nothing more is written.
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the RPC with `status` before the engine took the request (validation, queue full).
  void FinishNow(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // Watchdog side: if a write has waited for the client longer than `timeout` at `now`, cancels
  // the call and returns how many bytes were waiting; otherwise nullopt.
  std::optional<int64_t> CancelIfStalled(std::chrono::steady_clock::time_point now, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Whether the call is over (the watchdog forgets the stream).
  bool detached() const ABSL_LOCKS_EXCLUDED(mu_);
  // Observes cancellations for metrics (set before Attach).
  void SetOnServerCancel(std::function<void(const std::string& reason)> callback) {
    on_server_cancel_ = std::move(callback);
  }

 private:
  // What to tell the reactor once the lock is released (gRPC may run reactions inline, so no
  // reactor call is made while holding mu_).
  struct Action {
    GenerateReactor* reactor = nullptr;
    const vqdiffusion::v1::GenerateEvent* write = nullptr;  // StartWrite(write), or
    std::optional<grpc::Status> finish;                     // Finish(*finish)
  };
  // Returns false when the event would exceed the byte bound (nothing is queued then).
  bool Enqueue(vqdiffusion::v1::GenerateEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Action Pump() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Run(const Action& action);
  // Marks the call cancelled by the server (under mu_); CancelCall() must follow, without mu_.
  void MarkServerCancelled(const std::string& reason, const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelCall() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string request_id_;
  const int64_t max_pending_bytes_;
  std::function<void(const std::string&)> on_server_cancel_;
  mutable absl::Mutex mu_;
  int64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // pending_ and in_flight_
  std::chrono::steady_clock::time_point write_started_ ABSL_GUARDED_BY(mu_);
  std::optional<std::string> cancel_reason_ ABSL_GUARDED_BY(mu_);
  bool detached_ ABSL_GUARDED_BY(mu_) = false;
  // Guards `context_` against Detach while TryCancel runs; recursive because gRPC may run the
  // reactor's reactions inline.
  std::recursive_mutex context_mu_;
  grpc::CallbackServerContext* context_ = nullptr;
  GenerateReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null before Attach and after Detach
  std::deque<vqdiffusion::v1::GenerateEvent> pending_ ABSL_GUARDED_BY(mu_);
  vqdiffusion::v1::GenerateEvent in_flight_ ABSL_GUARDED_BY(mu_);  // must live until OnWriteDone
  int64_t in_flight_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
};

// gRPC's server-side reactor of one Generate call.
class GenerateReactor : public grpc::ServerWriteReactor<vqdiffusion::v1::GenerateEvent> {
 public:
  // `on_cancel` runs when the client cancels or the deadline passes (gRPC's OnCancel).
  GenerateReactor(std::shared_ptr<EventStream> stream, std::function<void()> on_cancel);

  void OnWriteDone(bool ok) override { stream_->OnWriteDone(ok); }
  void OnCancel() override;
  void OnDone() override;

 private:
  std::shared_ptr<EventStream> stream_;
  std::function<void()> on_cancel_;
};

// absl::Status -> grpc::Status (the codes are the same).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace vqd::server
