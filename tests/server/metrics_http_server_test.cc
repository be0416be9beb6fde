// The /metrics endpoint over a real loopback socket: what it answers to well-formed, wrong and
// hostile requests, and that a stalled client does not keep it from serving the next one.
#include "server/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

namespace vqd::server {
namespace {

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// Sends `request` as is and reads until the server closes the connection.
std::string Exchange(int port, const std::string& request) {
  const int fd = Connect(port);
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, static_cast<size_t>(n));
  close(fd);
  return response;
}

std::string StatusLine(const std::string& response) { return response.substr(0, response.find("\r\n")); }
std::string Body(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "<no header end>" : response.substr(at + 4);
}

constexpr char kMetrics[] = "# TYPE vqd_test_total counter\nvqd_test_total 7\n";

std::unique_ptr<MetricsHttpServer> StartServer(MetricsHttpServer::Render render = [] { return std::string(kMetrics); },
                                               absl::Duration deadline = absl::Seconds(5)) {
  auto server = MetricsHttpServer::Start("127.0.0.1", 0, std::move(render), deadline);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

TEST(MetricsHttpServer, GetMetricsAnswersTheRenderedTextWithItsLength) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  ASSERT_GT(server->port(), 0);
  const std::string response =
      Exchange(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n");
  EXPECT_EQ(StatusLine(response), "HTTP/1.1 200 OK");
  EXPECT_NE(response.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << response;
  EXPECT_NE(response.find("Content-Length: " + std::to_string(sizeof(kMetrics) - 1) + "\r\n"), std::string::npos);
  EXPECT_EQ(Body(response), kMetrics);
  // Prometheus may add a query string; HTTP/1.0 clients (curl -0, the tests' scraper) work too.
  EXPECT_EQ(Body(Exchange(server->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n")), kMetrics);
}

TEST(MetricsHttpServer, HeadHasTheHeadersButNoBody) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  const std::string response = Exchange(server->port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(StatusLine(response), "HTTP/1.1 200 OK");
  EXPECT_EQ(Body(response), "");
}

TEST(MetricsHttpServer, WrongPathsMethodsAndGarbageGetTheirErrors) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  EXPECT_EQ(StatusLine(Exchange(server->port(), "GET / HTTP/1.1\r\n\r\n")), "HTTP/1.1 404 Not Found");
  EXPECT_EQ(StatusLine(Exchange(server->port(), "GET /metricsx HTTP/1.1\r\n\r\n")), "HTTP/1.1 404 Not Found");
  const std::string post = Exchange(server->port(), "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(StatusLine(post), "HTTP/1.1 405 Method Not Allowed");
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(StatusLine(Exchange(server->port(), "hello\r\n\r\n")), "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(StatusLine(Exchange(server->port(), "GET /metrics SPDY/3\r\n\r\n")), "HTTP/1.1 400 Bad Request");
  // A head that never ends is cut off at 8 KiB, not buffered without bound.
  const std::string huge = "GET /metrics HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a');
  EXPECT_EQ(StatusLine(Exchange(server->port(), huge)), "HTTP/1.1 431 Request Header Fields Too Large");
}

TEST(MetricsHttpServer, AStalledClientTimesOutAndTheNextScrapeIsServed) {
  auto server = StartServer([] { return std::string(kMetrics); }, absl::Milliseconds(300));
  ASSERT_TRUE(server);
  const int stalled = Connect(server->port());
  ASSERT_GE(stalled, 0);
  const std::string partial = "GET /metr";
  ASSERT_EQ(send(stalled, partial.data(), partial.size(), MSG_NOSIGNAL), static_cast<ssize_t>(partial.size()));
  const auto start = std::chrono::steady_clock::now();
  // Queued behind the stalled one; answered once its deadline passed.
  EXPECT_EQ(Body(Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n")), kMetrics);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  std::string response;
  char buffer[512];
  ssize_t n;
  while ((n = read(stalled, buffer, sizeof(buffer))) > 0) response.append(buffer, static_cast<size_t>(n));
  close(stalled);
  EXPECT_EQ(StatusLine(response), "HTTP/1.1 408 Request Timeout");
}

TEST(MetricsHttpServer, ARenderingFailureIs500AndServingGoesOn) {
  std::atomic<int> calls{0};
  auto server = StartServer([&calls]() -> std::string {
    if (calls.fetch_add(1) == 0) throw std::runtime_error("collect failed");
    return kMetrics;
  });
  ASSERT_TRUE(server);
  EXPECT_EQ(StatusLine(Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n")),
            "HTTP/1.1 500 Internal Server Error");
  EXPECT_EQ(Body(Exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n")), kMetrics);
}

TEST(MetricsHttpServer, ABusyPortIsAClearErrorAndStoppingReleasesThePort) {
  auto first = StartServer();
  ASSERT_TRUE(first);
  const int port = first->port();
  auto second = MetricsHttpServer::Start("127.0.0.1", port, [] { return std::string(); });
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << second.status();
  first.reset();
  auto again = MetricsHttpServer::Start("127.0.0.1", port, [] { return std::string(kMetrics); });
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Body(Exchange(port, "GET /metrics HTTP/1.1\r\n\r\n")), kMetrics);
  EXPECT_FALSE(MetricsHttpServer::Start("no such host name.invalid", 0, [] { return std::string(); }).ok());
}

}  // namespace
}  // namespace vqd::server
