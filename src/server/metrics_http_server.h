// A minimal HTTP/1.1 endpoint for Prometheus: GET (or HEAD) /metrics answers with the text that
// `render` returns; anything else gets 404, 405 or 400. One connection at a time, closed after
// each answer, with a deadline for reading the request, which may be at most 8 KiB.
//
// prometheus-cpp's own Exposer runs civetweb, whose threads are built with a fixed 100 KiB stack;
// the CUDA libraries PyTorch links hold more thread-local storage than that, so civetweb cannot
// start a single thread in a process that links libtorch_cuda (pthread_create: EINVAL).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vqd::server {

class MetricsHttpServer {
 public:
  using Render = std::function<std::string()>;

  // Listens on `address:port` (an IPv4 or IPv6 literal or a host name; port 0: any free port).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& address, int port, Render render,
                                                                  absl::Duration read_deadline = absl::Seconds(5));
  ~MetricsHttpServer();  // stops serving and joins the thread

  int port() const { return port_; }

 private:
  MetricsHttpServer(int listen_fd, int wake_fd, int port, Render render, absl::Duration read_deadline);
  void Loop();
  void Answer(int fd);

  const int listen_fd_;
  const int wake_fd_;  // an eventfd that ends Loop()
  const int port_;
  const Render render_;
  const absl::Duration read_deadline_;
  std::thread thread_;
};

// What to answer to a request head ("GET /metrics HTTP/1.1\r\n...\r\n\r\n"): 200 for GET or
// HEAD of /metrics (a query string is ignored), 404 for other paths, 405 for other methods, 400
// for anything that is not an HTTP/1.x request line.
struct HttpAnswer {
  int code = 400;
  bool head_only = false;  // HEAD: headers without the body
};
HttpAnswer ClassifyMetricsRequest(const std::string& request_head);

}  // namespace vqd::server
