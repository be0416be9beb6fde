// Cancels Generate calls whose client stopped reading: a write that the client has not accepted
// for the stalled-stream timeout means its events and images would sit in memory for as long as
// the client keeps the connection open. One thread for the whole server, checking every stream a
// few times per timeout.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "server/event_stream.h"

namespace vqd::server {

class StreamWatchdog {
 public:
  explicit StreamWatchdog(absl::Duration timeout);
  ~StreamWatchdog();

  // Watches the stream until its call is over.
  void Watch(const std::shared_ptr<EventStream>& stream);

 private:
  void Loop();

  const absl::Duration timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<std::weak_ptr<EventStream>> streams_;
  std::thread thread_;
};

}  // namespace vqd::server
