#include "server/metrics_http_server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vqd::server {
namespace {

constexpr size_t kMaxRequestHead = 8 * 1024;

// Writes all of `data`; false when the peer went away or the send timeout passed.
bool WriteAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

const char* Reason(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    default: return "Error";
  }
}

std::string Response(int code, absl::string_view content_type, absl::string_view body, bool head_only) {
  std::string out = absl::StrCat("HTTP/1.1 ", code, " ", Reason(code), "\r\nContent-Type: ", content_type,
                                 "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n");
  if (code == 405) absl::StrAppend(&out, "Allow: GET, HEAD\r\n");
  absl::StrAppend(&out, "\r\n");
  if (!head_only) absl::StrAppend(&out, body);
  return out;
}

}  // namespace

HttpAnswer ClassifyMetricsRequest(const std::string& request_head) {
  HttpAnswer answer;
  const size_t line_end = request_head.find("\r\n");
  if (line_end == std::string::npos) return answer;
  std::vector<absl::string_view> parts =
      absl::StrSplit(absl::string_view(request_head).substr(0, line_end), ' ', absl::SkipEmpty());
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.")) return answer;
  const absl::string_view method = parts[0];
  absl::string_view target = parts[1];
  if (const size_t q = target.find('?'); q != absl::string_view::npos) target = target.substr(0, q);
  if (method != "GET" && method != "HEAD") {
    answer.code = 405;
    return answer;
  }
  answer.head_only = method == "HEAD";
  answer.code = (target == "/metrics" || target == "/metrics/") ? 200 : 404;
  return answer;
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(const std::string& address, int port,
                                                                              Render render,
                                                                              absl::Duration read_deadline) {
  if (port < 0 || port > 65535) return absl::InvalidArgumentError(absl::StrCat("metrics port ", port, " is out of range"));
  const std::string where = absl::StrCat(address, ":", port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string host(absl::StripSuffix(absl::StripPrefix(address, "["), "]"));
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(port).c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serve metrics on ", where, ": ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string last_error = "no address";
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", where, ": ", last_error));
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  const int bound_port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  const int wake = ::eventfd(0, EFD_CLOEXEC);
  if (wake < 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("metrics endpoint: eventfd: ", std::strerror(errno)));
  }
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(fd, wake, bound_port, std::move(render), read_deadline));
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  return server;
}

MetricsHttpServer::MetricsHttpServer(int listen_fd, int wake_fd, int port, Render render, absl::Duration read_deadline)
    : listen_fd_(listen_fd), wake_fd_(wake_fd), port_(port), render_(std::move(render)), read_deadline_(read_deadline) {}

MetricsHttpServer::~MetricsHttpServer() {
  const uint64_t one = 1;
  if (::write(wake_fd_, &one, sizeof(one)) < 0) spdlog::warn("metrics endpoint: cannot wake its thread");
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
}

void MetricsHttpServer::Loop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics endpoint: poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the peer gave up, or descriptors ran out for a moment
    Answer(fd);
    ::close(fd);
  }
}

void MetricsHttpServer::Answer(int fd) {
  const absl::Time deadline = absl::Now() + read_deadline_;
  const timeval send_timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
  std::string head;
  char buffer[2048];
  int code = 0;
  while (head.find("\r\n\r\n") == std::string::npos) {
    if (head.size() > kMaxRequestHead) {
      code = 431;
      break;
    }
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    pollfd p{fd, POLLIN, 0};
    if (left_ms <= 0 || ::poll(&p, 1, static_cast<int>(left_ms)) <= 0) {
      code = 408;
      break;
    }
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // closed before a whole request arrived: nobody to answer
    head.append(buffer, static_cast<size_t>(n));
  }
  if (code != 0) {
    WriteAll(fd, Response(code, "text/plain", Reason(code), false));
    return;
  }
  const HttpAnswer answer = ClassifyMetricsRequest(head);
  if (answer.code != 200) {
    WriteAll(fd, Response(answer.code, "text/plain", Reason(answer.code), answer.head_only));
    return;
  }
  std::string body;
  try {
    body = render_();
  } catch (const std::exception& e) {
    spdlog::error("metrics endpoint: rendering failed: {}", e.what());
    WriteAll(fd, Response(500, "text/plain", Reason(500), answer.head_only));
    return;
  }
  WriteAll(fd, Response(200, "text/plain; version=0.0.4; charset=utf-8", body, answer.head_only));
}

}  // namespace vqd::server
