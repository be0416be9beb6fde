#include "metrics_scrape.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace vqd::loadgen {
namespace {

bool SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  return true;
}

std::string DecodeChunked(const std::string& body) {
  std::string out;
  size_t pos = 0;
  while (pos < body.size()) {
    const size_t eol = body.find("\r\n", pos);
    if (eol == std::string::npos) break;
    const size_t len = std::strtoul(body.substr(pos, eol - pos).c_str(), nullptr, 16);
    if (len == 0) break;
    out.append(body, eol + 2, len);
    pos = eol + 2 + len + 2;
  }
  return out;
}

}  // namespace

Scrape ScrapeMetrics(const std::string& address) {
  Scrape result;
  std::string host, port;
  if (!SplitHostPort(address, &host, &port)) {
    result.error = "bad metrics address " + address;
    return result;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    result.error = absl::StrCat("cannot resolve ", address, ": ", gai_strerror(rc));
    return result;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    result.error = absl::StrCat("cannot connect to ", address, ": ", std::strerror(errno));
    return result;
  }
  const std::string request = absl::StrCat("GET /metrics HTTP/1.0\r\nHost: ", host, "\r\nConnection: close\r\n\r\n");
  std::string response;
  if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    char buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  const size_t header_end = response.find("\r\n\r\n");
  if (header_end == std::string::npos || response.compare(0, 5, "HTTP/") != 0) {
    result.error = absl::StrCat("no HTTP response from ", address);
    return result;
  }
  const std::string headers = response.substr(0, header_end);
  const size_t sp = headers.find(' ');
  if (sp == std::string::npos || headers.compare(sp + 1, 3, "200") != 0) {
    result.error = absl::StrCat("HTTP error from ", address, ": ", headers.substr(0, headers.find("\r\n")));
    return result;
  }
  std::string body = response.substr(header_end + 4);
  std::string lower = headers;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.find("transfer-encoding: chunked") != std::string::npos) body = DecodeChunked(body);
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    // The value follows the last space outside the label set.
    size_t name_end = line.find('{');
    size_t value_start;
    if (name_end != std::string::npos && name_end < line.find(' ')) {
      const size_t close = line.find("} ", name_end);
      if (close == std::string::npos) continue;
      value_start = close + 2;
      name_end = close + 1;
    } else {
      name_end = line.find(' ');
      if (name_end == std::string::npos) continue;
      value_start = name_end + 1;
    }
    const std::string value = line.substr(value_start, line.find(' ', value_start) - value_start);
    result.samples[line.substr(0, name_end)] = std::strtod(value.c_str(), nullptr);
  }
  result.ok = true;
  return result;
}

}  // namespace vqd::loadgen
