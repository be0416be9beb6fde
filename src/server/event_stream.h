// The bridge between the engine and one Generate RPC. The engine delivers events from its
// threads (never blocking); the stream converts them to protobuf and writes them with the gRPC
// callback API, one write in flight at a time. Progress events that pile up behind a slow
// client are coalesced (only the newest is kept); images, Done and errors are never dropped.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>

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
  explicit EventStream(std::string request_id) : request_id_(std::move(request_id)) {}

  // engine::EventSink (engine threads).
  void Deliver(engine::RequestEvent event) override ABSL_LOCKS_EXCLUDED(mu_);
  void Fail(const absl::Status& status, engine::Outcome outcome) override ABSL_LOCKS_EXCLUDED(mu_);

  // Reactor side.
  void Attach(GenerateReactor* reactor) ABSL_LOCKS_EXCLUDED(mu_);
  // A write finished; starts the next one or finishes the RPC. `ok` false: the client is gone.
  void OnWriteDone(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  // The RPC is over (OnDone): nothing more is written.
  void Detach() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the RPC with `status` before the engine took the request (validation, queue full).
  void FinishNow(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // What to tell the reactor once the lock is released (gRPC may run reactions inline, so no
  // reactor call is made while holding mu_).
  struct Action {
    GenerateReactor* reactor = nullptr;
    const vqdiffusion::v1::GenerateEvent* write = nullptr;  // StartWrite(write), or
    std::optional<grpc::Status> finish;                     // Finish(*finish)
  };
  void Enqueue(vqdiffusion::v1::GenerateEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Action Pump() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Run(const Action& action);

  const std::string request_id_;
  absl::Mutex mu_;
  GenerateReactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;  // null before Attach and after Detach
  std::deque<vqdiffusion::v1::GenerateEvent> pending_ ABSL_GUARDED_BY(mu_);
  vqdiffusion::v1::GenerateEvent in_flight_ ABSL_GUARDED_BY(mu_);  // must live until OnWriteDone
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
