#include "server_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <sstream>

namespace vqd::testing {
namespace v1 = vqdiffusion::v1;

std::vector<const v1::Image*> StreamResult::images() const {
  std::vector<const v1::Image*> out;
  for (const auto& e : events) {
    if (e.has_image()) out.push_back(&e.image());
  }
  return out;
}

std::vector<const v1::Progress*> StreamResult::progress() const {
  std::vector<const v1::Progress*> out;
  for (const auto& e : events) {
    if (e.has_progress()) out.push_back(&e.progress());
  }
  return out;
}

bool StreamResult::has_done() const { return !events.empty() && events.back().has_done(); }

std::vector<std::vector<uint32_t>> StreamResult::final_grids() const {
  std::vector<std::vector<uint32_t>> out;
  for (const auto* image : images()) out.emplace_back(image->grid().tokens().begin(), image->grid().tokens().end());
  return out;
}

std::unique_ptr<v1::VqDiffusion::Stub> MakeStub(int port, const std::string& host) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(host + ":" + std::to_string(port), grpc::InsecureChannelCredentials(), args);
  return v1::VqDiffusion::NewStub(channel);
}

StreamResult Generate(v1::VqDiffusion::Stub& stub, const v1::GenerateRequest& request, double deadline_seconds,
                      const std::map<std::string, std::string>& metadata) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(deadline_seconds * 1000)));
  for (const auto& [k, v] : metadata) context.AddMetadata(k, v);
  StreamResult result;
  auto reader = stub.Generate(&context, request);
  v1::GenerateEvent event;
  while (reader->Read(&event)) result.events.push_back(event);
  result.status = reader->Finish();
  return result;
}

ConcurrentCalls::ConcurrentCalls(v1::VqDiffusion::Stub& stub, std::vector<v1::GenerateRequest> requests)
    : requests_(std::move(requests)), results_(requests_.size()) {
  for (size_t i = 0; i < requests_.size(); ++i) {
    threads_.emplace_back([this, &stub, i] { results_[i] = Generate(stub, requests_[i]); });
  }
}

ConcurrentCalls::~ConcurrentCalls() { Join(); }

std::vector<StreamResult> ConcurrentCalls::Join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  return results_;
}

std::string ScrapeMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

double MetricValue(const std::string& text, const std::string& sample) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, sample.size(), sample) == 0 && line.size() > sample.size() && line[sample.size()] == ' ') {
      return std::stod(line.substr(sample.size() + 1));
    }
  }
  return -1;
}

}  // namespace vqd::testing
