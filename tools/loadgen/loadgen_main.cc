// vqd-loadgen: a load and soak generator for the VQ-Diffusion gRPC service that checks every
// answer it gets and, afterwards, that the server's metrics account for exactly what it sent.
//
//   vqd-loadgen --server HOST:PORT --requests N --concurrency C --time-limit SECONDS [options]
//
// It sends up to N Generate calls, C at a time (one thread per slot, synchronous streaming
// calls), with parameters drawn from --seed. Each request is one of four kinds:
//   normal    valid, no deadline, not cancelled: must end OK with a well-formed event stream, or
//             RESOURCE_EXHAUSTED (queue full; counted as rejected).
//   invalid   exactly one field out of range (the server's limits come from GetModelInfo): must
//             end INVALID_ARGUMENT with a message naming that field, and no events.
//   cancel    valid; the client calls TryCancel after a random delay (most of them a delay after
//             the Queued event, some a few milliseconds after sending): CANCELLED, or OK /
//             RESOURCE_EXHAUSTED when the server answered before the cancel took effect.
//   deadline  valid, with a short deadline (1 ms to 4 s): DEADLINE_EXCEEDED, or OK /
//             RESOURCE_EXHAUSTED when the server answered first.
// At the time limit every call still in flight is cancelled (and still accounted: CANCELLED is
// then expected for any kind). An OK stream must be: Queued first (once), Started (once), Progress
// with strictly increasing steps (each a multiple of progress_interval or the last step, the
// last step always sent; timestep = steps - step), Image events with indices 0..n-1 in order, each
// a PNG whose signature, IHDR size and IEND trailer are right and whose grid has no mask token,
// Done last (once). The events before a failure status must be a prefix of that.
//
// Metrics rule (checked after the run, once vqd_queue_depth and every vqd_active_requests gauge
// are 0 and the counters have stopped moving). Each request the client sent may be counted by
// the server under one label of vqd_requests_total, or under none ("none": the call never
// reached the service handler, e.g. cancelled or expired before the server read it):
//   client OK                 -> ok
//   client INVALID_ARGUMENT   -> invalid
//   client RESOURCE_EXHAUSTED -> rejected
//   client CANCELLED          -> cancelled or ok (the server finished first); if the client had
//                                not seen Queued yet also none, rejected (invalid for an invalid
//                                request); deadline too when the request had a deadline
//   client DEADLINE_EXCEEDED  -> deadline, cancelled (gRPC's cancellation can reach the engine
//                                a moment before the engine's own clock passes the deadline) or
//                                ok; if Queued had not been seen yet also none or rejected
//   anything else             -> already a failure; any label
// The check passes when the counter deltas admit an assignment of every request to one of its
// allowed labels (checked exactly, with Hall's condition over all subsets of labels).
// vqd_images_generated_total counts the images of requests the server finished ok, so its delta
// must equal the images of client-OK requests plus the num_images of the R requests the server
// counted ok although the client saw them cancelled or expired (R = delta(ok) - client OK): the
// extra must lie between the sum of the R smallest and of the R largest such num_images.
//
// A slot whose call got RESOURCE_EXHAUSTED waits 0.5..1.5 x --reject-backoff-ms before its next
// call, as a polite client would; without it a closed loop against a full queue would spend most
// requests on instant rejections.
//
// --rss-pid PID samples /proc/PID/status VmRSS every second; exceeding --rss-limit-mb, or the
// process disappearing, is a failure. --rss-growth-limit-mb bounds the growth from the RSS once
// warmed up (a fresh sample when a quarter of the requests have finished or a quarter of the time
// limit has passed) to the RSS at the end, once the server is idle again: a leak detector.
//
// Exit 0 only without failures; 1 failures; 2 usage; 3 the server or its metrics could not be
// reached.
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/cli_args.h"
#include "vqdiffusion/v1/vqdiffusion.grpc.pb.h"

namespace {

namespace pb = ::vqdiffusion::v1;
using SteadyClock = std::chrono::steady_clock;

constexpr char kUsage[] =
    R"(usage: vqd-loadgen --server HOST:PORT --requests N --concurrency C --time-limit SECONDS [options]

  --seed S                 random seed of the request mix (default 1)
  --metrics HOST:PORT      the server's Prometheus endpoint; enables the metrics checks
  --invalid-fraction F     share of requests with one invalid field (default 0)
  --cancel-fraction F      share of requests the client cancels after a random delay (default 0)
  --deadline-fraction F    share of requests with a short deadline (default 0)
  --max-steps K            steps drawn in [1, K] (default 20; capped by the model's schedule)
  --max-images M           images drawn in [1, M] (default 4; capped by the server's limits)
  --rss-pid PID            sample VmRSS of PID every second
  --rss-limit-mb MB        fail if the sampled RSS exceeds MB (needs --rss-pid)
  --rss-growth-limit-mb MB fail if the RSS at the end (server idle again) exceeds the RSS once
                           warmed up (when a quarter of the requests or of the time limit has
                           passed) by more than MB: a leak detector (needs --rss-pid)
  --settle-timeout S       how long to wait for the server to go idle after the run (default 60)
  --channels K             gRPC connections to spread the calls over (default 4)
  --reject-backoff-ms MS   after RESOURCE_EXHAUSTED a slot waits 0.5..1.5 x MS before its next
                           call, as a polite client would (default 250; 0: retry at once)
  --report FILE            write a JSON report
  --verbose                print every failure as it happens (default: the first 20)

Exit codes: 0 no failures, 1 failures, 2 usage, 3 server or metrics unreachable.
)";

// ---------------------------------------------------------------------------------------------
// Small helpers

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string Quote(const std::string& s) { return "\"" + JsonEscape(s) + "\""; }

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

double Seconds(SteadyClock::duration d) { return std::chrono::duration<double>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  rank = std::max<size_t>(rank, 1);
  return v[std::min(rank, v.size()) - 1];
}

bool SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Metrics: a tiny HTTP/1.0 GET and a parser for the text exposition format.

struct Scrape {
  bool ok = false;
  std::string error;
  std::map<std::string, double> samples;  // "name{labels}" exactly as printed -> value

  double Get(const std::string& key, double missing = 0) const {
    auto it = samples.find(key);
    return it == samples.end() ? missing : it->second;
  }
  // Sum and maximum of every sample of one metric (any labels).
  double Sum(const std::string& name) const {
    double s = 0;
    for (const auto& [k, v] : samples) {
      if (k == name || (k.size() > name.size() && k.compare(0, name.size(), name) == 0 && k[name.size()] == '{'))
        s += v;
    }
    return s;
  }
};

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

const std::vector<std::string> kOutcomes = {"ok", "invalid", "rejected", "cancelled", "deadline", "error"};

std::string OutcomeKey(const std::string& outcome) {
  return absl::StrCat("vqd_requests_total{outcome=\"", outcome, "\"}");
}

// ---------------------------------------------------------------------------------------------
// RSS sampling

std::optional<double> ReadRssMb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, 6, "VmRSS:") == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // kB -> MiB
  }
  return std::nullopt;
}

class RssSampler {
 public:
  RssSampler(int pid, double limit_mb) : pid_(pid), limit_mb_(limit_mb) {}
  ~RssSampler() { Stop(); }

  void Start() {
    Sample();
    start_mb_ = last_mb_;
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        cv_.wait_for(lock, std::chrono::seconds(1));
        if (stop_) break;
        lock.unlock();
        Sample();
        lock.lock();
      }
    });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // One more sample now (the "end" figure).
  double SampleNow() {
    Sample();
    std::lock_guard<std::mutex> lock(mu_);
    return last_mb_;
  }

  // The RSS once the server is warmed up (see --rss-growth-limit-mb): a fresh sample now.
  void MarkWarm() {
    Sample();
    std::lock_guard<std::mutex> lock(mu_);
    warm_mb_ = last_mb_;
  }
  double start_mb() const { return start_mb_; }
  double warm_mb() {
    std::lock_guard<std::mutex> lock(mu_);
    return warm_mb_;
  }
  double peak_mb() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_mb_;
  }
  double last_mb() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_mb_;
  }
  std::vector<std::string> problems() {
    std::lock_guard<std::mutex> lock(mu_);
    return problems_;
  }
  int samples() {
    std::lock_guard<std::mutex> lock(mu_);
    return samples_;
  }

 private:
  void Sample() {
    const auto rss = ReadRssMb(pid_);
    std::lock_guard<std::mutex> lock(mu_);
    if (!rss) {
      if (!gone_) problems_.push_back(absl::StrFormat("process %d is gone (no /proc/%d/status)", pid_, pid_));
      gone_ = true;
      return;
    }
    ++samples_;
    last_mb_ = *rss;
    if (*rss > peak_mb_) peak_mb_ = *rss;
    if (limit_mb_ > 0 && *rss > limit_mb_ && !over_) {
      over_ = true;
      problems_.push_back(
          absl::StrFormat("RSS of process %d reached %.1f MiB, over the limit of %.1f MiB", pid_, *rss, limit_mb_));
    }
  }

  const int pid_;
  const double limit_mb_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  bool stop_ = false, gone_ = false, over_ = false;
  double start_mb_ = 0, peak_mb_ = 0, last_mb_ = 0, warm_mb_ = -1;
  int samples_ = 0;
  std::vector<std::string> problems_;
};

// ---------------------------------------------------------------------------------------------
// The request plan

enum class Kind { kNormal, kInvalid, kCancel, kDeadline };
const char* KindName(Kind k) {
  switch (k) {
    case Kind::kNormal:
      return "normal";
    case Kind::kInvalid:
      return "invalid";
    case Kind::kCancel:
      return "cancel";
    case Kind::kDeadline:
      return "deadline";
  }
  return "?";
}

struct ServerLimits {
  uint32_t max_images = 16, max_batch_rows = 64, max_queue = 256, max_prompt_bytes = 4096, max_steps = 100;
  uint32_t grid_h = 0, grid_w = 0, image_h = 0, image_w = 0, codebook = 0, mask_token = 0;
  std::set<std::string> devices;
};

struct Plan {
  int index = 0;
  Kind kind = Kind::kNormal;
  pb::GenerateRequest request;
  std::string invalid_field;  // kInvalid: the field the message must name
  std::string invalid_what;   // kInvalid: what was wrong (for reports)
  uint32_t num_images = 1;    // as the server will see it (defaults applied)
  uint32_t steps = 1;
  bool cancel_after_queued = false;
  double cancel_delay_s = 0;  // kCancel
  double deadline_s = 0;      // kDeadline
};

const std::vector<std::string> kWords = {
    "a",     "red",      "car",    "by",    "the",      "sea",       "teddy",  "bear",       "playing", "in",
    "pool",  "bowl",     "of",     "fruit", "mountain", "lake",      "at",     "sunset",     "oil",     "painting",
    "cat",   "wearing",  "hat",    "city",  "street",   "rain",      "neon",   "lights",     "forest",  "cabin",
    "snow",  "portrait", "old",    "man",   "robot",    "astronaut", "horse",  "watercolor", "sketch",  "blue",
    "green", "golden",   "hour",   "photo", "detailed", "4k",        "castle", "dragon",     "café",    "東京",
    "naïve", "crème",    "brûlée", "🚀",     "🌊",        "Ünïcödé",   "ß",      "日本の庭"};

class Planner {
 public:
  Planner(uint64_t seed, const ServerLimits& limits, uint32_t max_steps, uint32_t max_images)
      : rng_(seed), seed_(seed), limits_(limits), max_steps_(max_steps), max_images_(max_images) {}

  Plan Make(int index, double invalid_fraction, double cancel_fraction, double deadline_fraction) {
    Plan p;
    p.index = index;
    const double u = Uniform(0, 1);
    if (u < invalid_fraction) {
      p.kind = Kind::kInvalid;
    } else if (u < invalid_fraction + cancel_fraction) {
      p.kind = Kind::kCancel;
    } else if (u < invalid_fraction + cancel_fraction + deadline_fraction) {
      p.kind = Kind::kDeadline;
    } else {
      p.kind = Kind::kNormal;
    }
    FillValid(p);
    if (p.kind == Kind::kInvalid) MakeInvalid(p);
    if (p.kind == Kind::kCancel) {
      p.cancel_after_queued = Uniform(0, 1) < 0.75;
      p.cancel_delay_s = p.cancel_after_queued ? std::pow(10.0, Uniform(-3, std::log10(3.0))) : Uniform(0, 0.02);
    }
    if (p.kind == Kind::kDeadline) {
      const double r = Uniform(0, 1);
      p.deadline_s = r < 0.25 ? Uniform(0.001, 0.02) : r < 0.65 ? Uniform(0.02, 1.0) : Uniform(1.0, 4.0);
    }
    return p;
  }

 private:
  double Uniform(double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng_); }
  int64_t Int(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  bool Chance(double p) { return Uniform(0, 1) < p; }

  std::string Words(size_t min_bytes, size_t max_bytes) {
    std::string s;
    while (true) {
      const std::string& w = kWords[static_cast<size_t>(Int(0, static_cast<int64_t>(kWords.size()) - 1))];
      const size_t next = s.size() + (s.empty() ? 0 : 1) + w.size();
      if (next > max_bytes) break;
      if (!s.empty()) s += ' ';
      s += w;
      if (s.size() >= min_bytes && Chance(0.02)) break;
    }
    return s;
  }

  void FillValid(Plan& p) {
    pb::GenerateRequest& r = p.request;
    r.set_request_id(absl::StrFormat("lg-%d-%06d", seed_, p.index));
    // Prompt: sometimes empty, sometimes long (past the encoder's 77 tokens, up to the byte limit).
    const double pr = Uniform(0, 1);
    if (pr < 0.1) {
      r.set_prompt("");
    } else if (pr < 0.2) {
      const size_t max_bytes = limits_.max_prompt_bytes;
      r.set_prompt(Words(std::min<size_t>(400, max_bytes),
                         static_cast<size_t>(Int(std::min<int64_t>(400, max_bytes), max_bytes))));
    } else {
      std::string s;
      const int n = static_cast<int>(Int(1, 12));
      for (int i = 0; i < n; ++i) {
        const std::string& w = kWords[static_cast<size_t>(Int(0, static_cast<int64_t>(kWords.size()) - 1))];
        if (s.size() + w.size() + 1 > limits_.max_prompt_bytes) break;
        if (!s.empty()) s += ' ';
        s += w;
      }
      r.set_prompt(s);
    }
    // Guidance: 0, 1 or in (1, 10); sometimes unset (the server's 5.0).
    const double gr = Uniform(0, 1);
    float guidance;
    if (gr < 0.1) {
      guidance = 5.0f;  // unset
    } else if (gr < 0.4) {
      guidance = 0.0f;
      r.set_guidance_scale(guidance);
    } else if (gr < 0.55) {
      guidance = 1.0f;
      r.set_guidance_scale(guidance);
    } else {
      guidance = static_cast<float>(Uniform(1.0, 10.0));
      if (guidance <= 1.0f) guidance = 1.5f;
      r.set_guidance_scale(guidance);
    }
    const bool guided = guidance > 1.0f;
    // Images: within the server's max_images, our --max-images, and the rows of one batch.
    uint32_t max_images = std::min(max_images_, limits_.max_images);
    max_images = std::min(max_images, guided ? limits_.max_batch_rows / 2 : limits_.max_batch_rows);
    max_images = std::max<uint32_t>(max_images, 1);
    if (Chance(0.1)) {
      p.num_images = 1;  // unset
    } else {
      p.num_images = static_cast<uint32_t>(Int(1, max_images));
      r.set_num_images(p.num_images);
    }
    // Steps in [1, K]; unset means the server's default (100 or the schedule's length).
    const uint32_t default_steps = std::min<uint32_t>(100, limits_.max_steps);
    if (default_steps <= max_steps_ && Chance(0.05)) {
      p.steps = default_steps;
    } else {
      p.steps = static_cast<uint32_t>(Int(1, max_steps_));
      r.set_steps(p.steps);
    }
    // Truncation in (0.3, 1]; sometimes exactly 1, sometimes unset (1.0).
    const double tr = Uniform(0, 1);
    if (tr < 0.1) {
      // unset
    } else if (tr < 0.25) {
      r.set_truncation_rate(1.0f);
    } else {
      float t = static_cast<float>(Uniform(0.3, 1.0));
      if (t <= 0.3f) t = 0.5f;
      r.set_truncation_rate(t);
    }
    if (Chance(0.8)) r.set_seed(Chance(0.2) ? rng_() : rng_() >> 33);
    const double pi = Uniform(0, 1);
    if (pi < 0.4) {
      r.set_progress_interval(0);
    } else if (pi < 0.6) {
      r.set_progress_interval(1);
    } else {
      r.set_progress_interval(static_cast<uint32_t>(Int(1, p.steps + 3)));
    }
    const double prio = Uniform(0, 1);
    if (prio < 0.5) {
      r.set_priority(0);
    } else if (prio < 0.95) {
      r.set_priority(static_cast<int32_t>(Int(-5, 5)));
    } else {
      r.set_priority(Chance(0.5) ? INT32_MAX : INT32_MIN);
    }
  }

  // Exactly one field out of range; the rest stays valid.
  void MakeInvalid(Plan& p) {
    pb::GenerateRequest& r = p.request;
    std::vector<int> choices = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    // 12: too many rows for one batch: only when max_images allows such a request.
    const bool rows_case_possible = limits_.max_batch_rows / 2 + 1 <= limits_.max_images;
    if (!rows_case_possible) choices.pop_back();
    switch (choices[static_cast<size_t>(Int(0, static_cast<int64_t>(choices.size()) - 1))]) {
      case 0:
        r.set_steps(0);
        p.invalid_field = "steps", p.invalid_what = "steps 0";
        break;
      case 1:
        r.set_steps(limits_.max_steps + static_cast<uint32_t>(Int(1, 1000)));
        p.invalid_field = "steps", p.invalid_what = absl::StrCat("steps ", r.steps());
        break;
      case 2:
        r.set_truncation_rate(0.0f);
        p.invalid_field = "truncation_rate", p.invalid_what = "truncation 0";
        break;
      case 3:
        r.set_truncation_rate(static_cast<float>(Uniform(1.001, 5.0)));
        p.invalid_field = "truncation_rate", p.invalid_what = absl::StrCat("truncation ", r.truncation_rate());
        break;
      case 4:
        r.set_truncation_rate(Chance(0.5) ? -0.5f : std::numeric_limits<float>::quiet_NaN());
        p.invalid_field = "truncation_rate", p.invalid_what = absl::StrCat("truncation ", r.truncation_rate());
        break;
      case 5:
        r.set_guidance_scale(static_cast<float>(-Uniform(0.001, 10.0)));
        p.invalid_field = "guidance_scale", p.invalid_what = absl::StrCat("guidance ", r.guidance_scale());
        break;
      case 6:
        r.set_guidance_scale(Chance(0.5) ? std::numeric_limits<float>::quiet_NaN()
                                         : std::numeric_limits<float>::infinity());
        p.invalid_field = "guidance_scale", p.invalid_what = absl::StrCat("guidance ", r.guidance_scale());
        break;
      case 7:
        r.set_num_images(0);
        p.invalid_field = "num_images", p.invalid_what = "num_images 0";
        break;
      case 8:
        r.set_num_images(limits_.max_images + static_cast<uint32_t>(Int(1, 100)));
        p.invalid_field = "num_images", p.invalid_what = absl::StrCat("num_images ", r.num_images());
        break;
      case 9:
        r.set_prompt(std::string(limits_.max_prompt_bytes + static_cast<size_t>(Int(1, 100)), 'x'));
        p.invalid_field = "prompt", p.invalid_what = absl::StrCat("prompt of ", r.prompt().size(), " bytes");
        break;
      case 10:
        r.set_request_id(absl::StrCat(r.request_id(), " with spaces"));
        p.invalid_field = "request_id", p.invalid_what = "request_id with spaces";
        break;
      case 11:
        r.set_request_id(r.request_id() + std::string(200, 'z'));
        p.invalid_field = "request_id",
        p.invalid_what = absl::StrCat("request_id of ", r.request_id().size(), " bytes");
        break;
      case 12: {
        // Guided, more images than half the batch's rows, but within max_images.
        r.set_guidance_scale(static_cast<float>(Uniform(1.5, 10.0)));
        r.set_num_images(static_cast<uint32_t>(Int(limits_.max_batch_rows / 2 + 1, limits_.max_images)));
        p.invalid_field = "num_images";
        p.invalid_what = absl::StrCat(r.num_images(), " guided images for ", limits_.max_batch_rows, " rows");
        break;
      }
    }
    p.num_images = r.has_num_images() ? r.num_images() : 1;
  }

  std::mt19937_64 rng_;
  uint64_t seed_;
  ServerLimits limits_;
  uint32_t max_steps_, max_images_;
};

// ---------------------------------------------------------------------------------------------
// Calls in flight: scheduled cancellations and the time limit.

struct CancelFlags {
  bool cancel_issued = false;  // TryCancel called by the schedule
  bool time_limit = false;     // TryCancel called because the time limit was reached
};

class CallRegistry {
 public:
  CallRegistry() {
    thread_ = std::thread([this] { Loop(); });
  }
  ~CallRegistry() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      shutdown_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // False once the time limit was reached: do not start the call.
  bool Register(int id, grpc::ClientContext* context) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return false;
    calls_[id] = Entry{context, std::nullopt, {}};
    return true;
  }
  void ScheduleCancel(int id, SteadyClock::time_point when) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = calls_.find(id);
      if (it == calls_.end()) return;
      it->second.cancel_at = when;
    }
    cv_.notify_all();
  }
  // After Finish: the context may be destroyed once this returns.
  CancelFlags Unregister(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return {};
    CancelFlags flags = it->second.flags;
    calls_.erase(it);
    return flags;
  }
  // The time limit: cancel everything in flight and refuse new calls. Returns how many.
  int CancelAll() {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, e] : calls_) {
      e.flags.time_limit = true;
      e.context->TryCancel();
    }
    return static_cast<int>(calls_.size());
  }
  bool stopping() {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }
  int in_flight() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(calls_.size());
  }

 private:
  struct Entry {
    grpc::ClientContext* context;
    std::optional<SteadyClock::time_point> cancel_at;
    CancelFlags flags;
  };

  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!shutdown_) {
      const auto now = SteadyClock::now();
      auto next = now + std::chrono::milliseconds(200);
      for (auto& [id, e] : calls_) {
        if (!e.cancel_at) continue;
        if (*e.cancel_at <= now) {
          e.context->TryCancel();
          e.flags.cancel_issued = true;
          e.cancel_at.reset();
        } else {
          next = std::min(next, *e.cancel_at);
        }
      }
      cv_.wait_until(lock, next);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Entry> calls_;
  bool stopping_ = false, shutdown_ = false;
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// One call and the checks of its answer

struct Result {
  bool sent = false;  // the call was started (false: not started because of the time limit)
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string message;
  std::string outcome;  // ok, invalid, rejected, cancelled, deadline, error
  std::vector<std::string> problems;
  bool got_queued = false;
  uint32_t images_received = 0;
  int events = 0;
  double latency_s = 0;
  double first_event_s = -1;
  CancelFlags flags;
  std::set<std::string> allowed_server;  // labels (or "none") the server may count it under
};

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("code ", static_cast<int>(code));
  }
}

std::string Classify(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "ok";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "invalid";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "rejected";
    case grpc::StatusCode::CANCELLED:
      return "cancelled";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "deadline";
    default:
      return "error";
  }
}

uint32_t BigEndian32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

// Checks the event sequence. `complete`: the stream ended OK, so it must be whole (Done last, all
// images); otherwise it must be a well-formed prefix.
void CheckEvents(const Plan& plan, const ServerLimits& limits, const std::vector<pb::GenerateEvent>& events,
                 bool complete, std::vector<std::string>* problems) {
  auto problem = [&](const std::string& what) {
    if (problems->size() < 8) problems->push_back(what);
  };
  const pb::GenerateRequest& req = plan.request;
  const std::string& id = req.request_id();
  const uint32_t interval = req.progress_interval();
  enum Phase { kStart, kQueued, kStarted, kImages, kDone } phase = kStart;
  uint32_t last_step = 0;
  uint32_t next_image = 0;
  std::optional<uint64_t> started_seed;
  for (size_t i = 0; i < events.size(); ++i) {
    const pb::GenerateEvent& e = events[i];
    const std::string at = absl::StrCat("event ", i, ": ");
    if (phase == kDone) {
      problem(at + "an event after Done");
      break;
    }
    switch (e.event_case()) {
      case pb::GenerateEvent::kQueued:
        if (phase != kStart) problem(at + "Queued again or out of order");
        if (e.queued().request_id() != id) problem(at + "Queued has request_id " + e.queued().request_id());
        phase = kQueued;
        break;
      case pb::GenerateEvent::kStarted:
        if (phase != kQueued) problem(at + "Started not right after Queued");
        if (e.started().request_id() != id) problem(at + "Started has request_id " + e.started().request_id());
        if (!limits.devices.empty() && !limits.devices.count(e.started().device())) {
          problem(at + "Started on unknown device " + e.started().device());
        }
        if (req.has_seed() && e.started().seed() != req.seed()) {
          problem(at + absl::StrCat("Started seed ", e.started().seed(), " != requested ", req.seed()));
        }
        started_seed = e.started().seed();
        phase = kStarted;
        break;
      case pb::GenerateEvent::kProgress: {
        const pb::Progress& p = e.progress();
        if (phase != kStarted) problem(at + "Progress outside the denoising phase");
        if (interval == 0) problem(at + "Progress although progress_interval is 0");
        if (p.step() <= last_step) problem(at + absl::StrCat("Progress step ", p.step(), " after ", last_step));
        if (p.step() < 1 || p.step() > plan.steps)
          problem(at + absl::StrCat("Progress step ", p.step(), " of ", plan.steps));
        if (interval > 0 && p.step() % interval != 0 && p.step() != plan.steps) {
          problem(at + absl::StrCat("Progress step ", p.step(), " not a multiple of ", interval));
        }
        if (p.total_steps() != plan.steps) problem(at + absl::StrCat("Progress total_steps ", p.total_steps()));
        if (p.step() <= plan.steps && p.timestep() != plan.steps - p.step()) {
          problem(at + absl::StrCat("Progress step ", p.step(), " has timestep ", p.timestep(), ", expected ",
                                    plan.steps - p.step()));
        }
        if (!(p.masked_fraction() >= 0.0f && p.masked_fraction() <= 1.0f)) {
          problem(at + absl::StrCat("masked_fraction ", p.masked_fraction()));
        }
        if (static_cast<uint32_t>(p.grids_size()) != plan.num_images) {
          problem(at + absl::StrCat("Progress has ", p.grids_size(), " grids for ", plan.num_images, " images"));
        }
        for (const auto& g : p.grids()) {
          if (g.height() != limits.grid_h || g.width() != limits.grid_w ||
              static_cast<uint32_t>(g.tokens_size()) != limits.grid_h * limits.grid_w) {
            problem(at +
                    absl::StrCat("Progress grid ", g.height(), "x", g.width(), " with ", g.tokens_size(), " tokens"));
            break;
          }
          if (std::any_of(g.tokens().begin(), g.tokens().end(), [&](uint32_t t) { return t > limits.mask_token; })) {
            problem(at + "Progress token out of range");
            break;
          }
        }
        last_step = p.step();
        break;
      }
      case pb::GenerateEvent::kImage: {
        const pb::Image& img = e.image();
        if (phase != kStarted && phase != kImages) problem(at + "Image before Started");
        if (phase == kStarted && interval > 0 && last_step != plan.steps) {
          problem(at + absl::StrCat("images began after progress step ", last_step, " of ", plan.steps,
                                    " (the last step's progress is missing)"));
        }
        phase = kImages;
        if (img.index() != next_image)
          problem(at + absl::StrCat("Image index ", img.index(), ", expected ", next_image));
        ++next_image;
        if (img.width() != limits.image_w || img.height() != limits.image_h) {
          problem(at + absl::StrCat("Image size ", img.width(), "x", img.height()));
        }
        if (started_seed && img.seed() != *started_seed) problem(at + absl::StrCat("Image seed ", img.seed()));
        const std::string& png = img.png();
        static const char kSig[] = "\x89PNG\r\n\x1a\n";
        static const char kIend[] = "\0\0\0\0IEND\xae\x42\x60\x82";
        if (png.size() < 8 + 25 + 12 || png.compare(0, 8, kSig, 8) != 0) {
          problem(at + absl::StrCat("Image ", img.index(), " is not a PNG (", png.size(), " bytes)"));
        } else {
          if (png.compare(12, 4, "IHDR") != 0 || BigEndian32(png, 16) != limits.image_w ||
              BigEndian32(png, 20) != limits.image_h) {
            problem(at + absl::StrCat("Image ", img.index(), " PNG header says ", BigEndian32(png, 16), "x",
                                      BigEndian32(png, 20)));
          }
          if (png.compare(png.size() - 12, 12, kIend, 12) != 0) problem(at + "PNG does not end with IEND");
        }
        const auto& g = img.grid();
        if (g.height() != limits.grid_h || g.width() != limits.grid_w ||
            static_cast<uint32_t>(g.tokens_size()) != limits.grid_h * limits.grid_w) {
          problem(at + absl::StrCat("Image grid ", g.height(), "x", g.width(), " with ", g.tokens_size(), " tokens"));
        } else if (std::any_of(g.tokens().begin(), g.tokens().end(),
                               [&](uint32_t t) { return t >= limits.codebook; })) {
          problem(at + "Image grid holds a mask or out-of-range token");
        }
        break;
      }
      case pb::GenerateEvent::kDone: {
        if (phase != kImages && phase != kStarted) problem(at + "Done before Started");
        if (next_image != plan.num_images) {
          problem(at + absl::StrCat("Done after ", next_image, " of ", plan.num_images, " images"));
        }
        if (e.done().request_id() != id) problem(at + "Done has request_id " + e.done().request_id());
        if (e.done().steps() != plan.steps) problem(at + absl::StrCat("Done steps ", e.done().steps()));
        if (!(e.done().total_seconds() >= 0)) problem(at + "Done total_seconds negative");
        phase = kDone;
        break;
      }
      default:
        problem(at + "an empty event");
    }
  }
  if (complete && phase != kDone) problem("stream ended OK without Done");
  if (!complete && phase == kDone) problem(absl::StrCat("stream ended with a failure status after Done"));
  if (next_image > plan.num_images) problem(absl::StrCat(next_image, " images for ", plan.num_images));
}

void Execute(const Plan& plan, pb::VqDiffusion::Stub& stub, const ServerLimits& limits, CallRegistry& calls,
             Result* result) {
  grpc::ClientContext context;
  if (plan.kind == Kind::kDeadline) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(static_cast<int64_t>(plan.deadline_s * 1e6)));
  }
  if (!calls.Register(plan.index, &context)) return;
  result->sent = true;
  const auto start = SteadyClock::now();
  if (plan.kind == Kind::kCancel && !plan.cancel_after_queued) {
    calls.ScheduleCancel(plan.index,
                         start + std::chrono::microseconds(static_cast<int64_t>(plan.cancel_delay_s * 1e6)));
  }
  std::vector<pb::GenerateEvent> events;
  auto reader = stub.Generate(&context, plan.request);
  pb::GenerateEvent event;
  while (reader->Read(&event)) {
    if (events.empty()) result->first_event_s = Seconds(SteadyClock::now() - start);
    if (event.has_queued() && !result->got_queued) {
      result->got_queued = true;
      if (plan.kind == Kind::kCancel && plan.cancel_after_queued) {
        calls.ScheduleCancel(plan.index, SteadyClock::now() + std::chrono::microseconds(
                                                                  static_cast<int64_t>(plan.cancel_delay_s * 1e6)));
      }
    }
    if (event.has_image()) ++result->images_received;
    events.push_back(std::move(event));  // checked once the call has ended
    event.Clear();
  }
  const grpc::Status status = reader->Finish();
  result->latency_s = Seconds(SteadyClock::now() - start);
  result->flags = calls.Unregister(plan.index);
  result->code = status.error_code();
  result->message = status.error_message();
  result->outcome = Classify(status.error_code());
  result->events = static_cast<int>(events.size());
  auto problem = [&](const std::string& what) { result->problems.push_back(what); };

  const bool client_cancelled = result->flags.cancel_issued || result->flags.time_limit;
  const std::string& o = result->outcome;
  // Is this outcome allowed for this kind of request?
  bool allowed = false;
  switch (plan.kind) {
    case Kind::kNormal:
      allowed = o == "ok" || o == "rejected" || (o == "cancelled" && result->flags.time_limit);
      break;
    case Kind::kInvalid:
      allowed = o == "invalid" || (o == "cancelled" && result->flags.time_limit);
      break;
    case Kind::kCancel:
      allowed = o == "ok" || o == "rejected" || (o == "cancelled" && client_cancelled);
      break;
    case Kind::kDeadline:
      allowed = o == "ok" || o == "rejected" || o == "deadline" || (o == "cancelled" && result->flags.time_limit);
      break;
  }
  if (!allowed) {
    problem(absl::StrCat("unexpected ", CodeName(status.error_code()), " \"", status.error_message(), "\" for a ",
                         KindName(plan.kind), " request",
                         plan.kind == Kind::kInvalid ? absl::StrCat(" (", plan.invalid_what, ")") : std::string(),
                         client_cancelled ? " (cancel issued)" : ""));
  }
  if (o == "invalid") {
    if (plan.kind == Kind::kInvalid && status.error_message().find(plan.invalid_field) == std::string::npos) {
      problem(absl::StrCat("INVALID_ARGUMENT message \"", status.error_message(), "\" does not name ",
                           plan.invalid_field, " (", plan.invalid_what, ")"));
    }
    if (!events.empty()) problem(absl::StrCat("INVALID_ARGUMENT after ", events.size(), " events"));
  }
  if (o == "rejected" && !events.empty()) problem(absl::StrCat("RESOURCE_EXHAUSTED after ", events.size(), " events"));
  if (o == "ok" && result->images_received != plan.num_images) {
    problem(absl::StrCat("OK with ", result->images_received, " images of ", plan.num_images));
  }
  CheckEvents(plan, limits, events, o == "ok", &result->problems);

  // What the server may have counted it as (see the rule at the top of the file).
  std::set<std::string>& s = result->allowed_server;
  const bool loose = !result->got_queued;
  if (o == "ok" || o == "invalid" || o == "rejected") {
    s = {o};
  } else if (o == "cancelled") {
    s = {"cancelled", "ok"};
    if (plan.kind == Kind::kDeadline) s.insert("deadline");
    if (loose) {
      s.insert("none");
      s.insert(plan.kind == Kind::kInvalid ? "invalid" : "rejected");
    }
  } else if (o == "deadline") {
    s = {"deadline", "cancelled", "ok"};
    if (loose) {
      s.insert("none");
      s.insert("rejected");
    }
  } else {
    s = {"ok", "invalid", "rejected", "cancelled", "deadline", "error", "none"};
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics checks

struct MetricsCheck {
  bool enabled = false;
  bool settled = false;
  double settle_seconds = 0;
  std::map<std::string, double> delta;  // per outcome
  double images_delta = 0;
  double final_queue_depth = -1, final_active_requests = -1;
  std::vector<std::string> problems;
};

// Exact feasibility: can every request be given one label of its allowed set such that each
// label gets exactly delta[label] requests? Hall's condition for every subset of labels.
void CheckAssignment(const std::vector<const Result*>& sent, const std::map<std::string, double>& delta,
                     std::vector<std::string>* problems) {
  std::vector<std::string> labels = kOutcomes;
  labels.push_back("none");
  double counted = 0;
  for (const auto& o : kOutcomes) counted += delta.at(o);
  std::map<std::string, double> cap = delta;
  cap["none"] = static_cast<double>(sent.size()) - counted;
  if (cap["none"] < 0) {
    problems->push_back(absl::StrFormat("the server counted %.0f requests but the client sent only %d", counted,
                                        static_cast<int>(sent.size())));
    return;
  }
  // Group the requests by allowed set (as a bit mask over `labels`).
  std::map<unsigned, int> groups;
  for (const Result* r : sent) {
    unsigned mask = 0;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (r->allowed_server.count(labels[i])) mask |= 1u << i;
    }
    ++groups[mask];
  }
  const unsigned all = (1u << labels.size()) - 1;
  for (unsigned subset = 1; subset <= all; ++subset) {
    // Requests that must land inside `subset` cannot outnumber its capacity...
    int forced = 0;
    for (const auto& [mask, n] : groups) {
      if ((mask & ~subset) == 0) forced += n;
    }
    double capacity = 0;
    std::string names;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (subset & (1u << i)) {
        capacity += cap[labels[i]];
        names += (names.empty() ? "" : "+") + labels[i];
      }
    }
    if (forced > capacity + 0.5) {
      problems->push_back(absl::StrFormat(
          "metrics: %d requests can only have been counted as %s, but the server's counters moved by %.0f there",
          forced, names, capacity));
      return;
    }
    // ...and (equivalently with equal totals) the counts of `subset` need enough candidates.
    int candidates = 0;
    for (const auto& [mask, n] : groups) {
      if (mask & subset) candidates += n;
    }
    if (capacity > candidates + 0.5) {
      problems->push_back(absl::StrFormat(
          "metrics: the server counted %.0f requests as %s, but only %d requests the client sent can be among them",
          capacity, names, candidates));
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------

struct Options {
  std::string server;
  int64_t requests = 0;
  int64_t concurrency = 1;
  double time_limit = 0;
  uint64_t seed = 1;
  std::string metrics;
  double invalid_fraction = 0, cancel_fraction = 0, deadline_fraction = 0;
  int64_t max_steps = 20, max_images = 4;
  int64_t rss_pid = 0;
  double rss_limit_mb = 0;
  double rss_growth_limit_mb = 0;
  double settle_timeout = 60;
  int64_t channels = 4;
  double reject_backoff_ms = 250;
  std::string report;
  bool verbose = false;
};

int Usage(const std::string& error) {
  std::cerr << "vqd-loadgen: " << error << "\n\n" << kUsage;
  return 2;
}

int Run(const Options& opt) {
  // Channels, each its own connection.
  std::vector<std::unique_ptr<pb::VqDiffusion::Stub>> stubs;
  for (int64_t i = 0; i < opt.channels; ++i) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetInt("vqd.loadgen.channel", static_cast<int>(i));  // distinct args: no shared subchannel
    stubs.push_back(
        pb::VqDiffusion::NewStub(grpc::CreateCustomChannel(opt.server, grpc::InsecureChannelCredentials(), args)));
  }

  // The server's limits.
  ServerLimits limits;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    context.set_wait_for_ready(true);
    pb::ModelInfo info;
    const grpc::Status status = stubs[0]->GetModelInfo(&context, pb::GetModelInfoRequest(), &info);
    if (!status.ok()) {
      std::cerr << "vqd-loadgen: GetModelInfo on " << opt.server << " failed: " << CodeName(status.error_code()) << " "
                << status.error_message() << "\n";
      return 3;
    }
    limits.max_images = info.limits().max_images();
    limits.max_batch_rows = info.limits().max_batch_rows();
    limits.max_queue = info.limits().max_queue();
    limits.max_prompt_bytes = info.limits().max_prompt_bytes();
    limits.max_steps = info.limits().max_steps() ? info.limits().max_steps() : info.num_train_timesteps();
    limits.grid_h = info.grid_height();
    limits.grid_w = info.grid_width();
    limits.image_h = info.image_height();
    limits.image_w = info.image_width();
    limits.codebook = info.codebook_size();
    limits.mask_token = info.mask_token();
    limits.devices.insert(info.devices().begin(), info.devices().end());
    std::cerr << absl::StrFormat(
        "vqd-loadgen: server %s, model %s (%ux%u grid, %ux%u images, %u steps) on %d device(s); limits: %u images, "
        "%u batch rows, queue %u, %u prompt bytes\n",
        opt.server, info.model_name(), limits.grid_h, limits.grid_w, limits.image_w, limits.image_h, limits.max_steps,
        info.devices_size(), limits.max_images, limits.max_batch_rows, limits.max_queue, limits.max_prompt_bytes);
  }
  const uint32_t max_steps = static_cast<uint32_t>(std::min<int64_t>(opt.max_steps, limits.max_steps));
  const uint32_t max_images = static_cast<uint32_t>(std::min<int64_t>(opt.max_images, limits.max_images));

  // The plan, drawn up front from the seed.
  Planner planner(opt.seed, limits, max_steps, max_images);
  std::vector<Plan> plans;
  plans.reserve(static_cast<size_t>(opt.requests));
  for (int64_t i = 0; i < opt.requests; ++i) {
    plans.push_back(
        planner.Make(static_cast<int>(i), opt.invalid_fraction, opt.cancel_fraction, opt.deadline_fraction));
  }

  MetricsCheck metrics;
  Scrape before;
  if (!opt.metrics.empty()) {
    metrics.enabled = true;
    before = ScrapeMetrics(opt.metrics);
    if (!before.ok) {
      std::cerr << "vqd-loadgen: " << before.error << "\n";
      return 3;
    }
  }
  std::unique_ptr<RssSampler> rss;
  if (opt.rss_pid > 0) {
    rss = std::make_unique<RssSampler>(static_cast<int>(opt.rss_pid), opt.rss_limit_mb);
    rss->Start();
  }

  // The run.
  std::vector<Result> results(plans.size());
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> finished{0};
  std::atomic<int> failures_printed{0};
  std::mutex print_mu;
  CallRegistry calls;
  const auto run_start = SteadyClock::now();
  const auto run_deadline = run_start + std::chrono::microseconds(static_cast<int64_t>(opt.time_limit * 1e6));
  std::vector<std::thread> workers;
  std::atomic<int64_t> workers_alive{opt.concurrency};
  for (int64_t w = 0; w < opt.concurrency; ++w) {
    workers.emplace_back([&] {
      struct Exit {
        std::atomic<int64_t>& alive;
        ~Exit() { alive.fetch_sub(1); }
      } exit_guard{workers_alive};
      while (true) {
        const int64_t i = next.fetch_add(1);
        if (i >= static_cast<int64_t>(plans.size()) || calls.stopping()) return;
        const Plan& plan = plans[static_cast<size_t>(i)];
        Result& result = results[static_cast<size_t>(i)];
        Execute(plan, *stubs[static_cast<size_t>(i % static_cast<int64_t>(stubs.size()))], limits, calls, &result);
        if (!result.sent) return;
        finished.fetch_add(1);
        if (result.outcome == "rejected" && opt.reject_backoff_ms > 0) {
          // Jitter from the request's index: deterministic, and different for every slot.
          const double jitter = 0.5 + static_cast<double>((static_cast<uint64_t>(i) * 2654435761u) % 1000) / 1000.0;
          const auto until = SteadyClock::now() +
                             std::chrono::microseconds(static_cast<int64_t>(opt.reject_backoff_ms * jitter * 1000));
          while (SteadyClock::now() < until && !calls.stopping()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }
        if (!result.problems.empty() && (opt.verbose || failures_printed.fetch_add(1) < 20)) {
          std::lock_guard<std::mutex> lock(print_mu);
          std::cerr << "FAIL request " << plan.request.request_id() << " (" << KindName(plan.kind) << ", "
                    << CodeName(result.code) << "):";
          for (const auto& p : result.problems) std::cerr << "\n    " << p;
          std::cerr << "\n";
        }
      }
    });
  }
  // Wait for the workers, the time limit, or both; report progress every 10 s.
  bool time_limit_hit = false;
  int cancelled_at_limit = 0;
  bool warm = false;
  auto last_report = run_start;
  while (true) {
    const int64_t done = finished.load();
    if (workers_alive.load() == 0) break;
    const auto now = SteadyClock::now();
    if (rss && !warm &&
        (done * 4 >= static_cast<int64_t>(plans.size()) || Seconds(now - run_start) * 4 >= opt.time_limit)) {
      warm = true;
      rss->MarkWarm();
    }
    if (now >= run_deadline) {
      time_limit_hit = true;
      cancelled_at_limit = calls.CancelAll();
      break;
    }
    if (now - last_report >= std::chrono::seconds(10)) {
      last_report = now;
      std::lock_guard<std::mutex> lock(print_mu);
      std::cerr << absl::StrFormat("vqd-loadgen: %.0fs: %d finished, %d in flight%s\n", Seconds(now - run_start),
                                   static_cast<int>(done), calls.in_flight(),
                                   rss ? absl::StrFormat(", server RSS %.1f MiB", rss->last_mb()) : std::string());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& t : workers) t.join();
  const double run_seconds = Seconds(SteadyClock::now() - run_start);
  if (time_limit_hit) {
    std::cerr << absl::StrFormat("vqd-loadgen: time limit of %.0f s reached; cancelled %d calls in flight\n",
                                 opt.time_limit, cancelled_at_limit);
  }

  // Tally.
  std::vector<const Result*> sent;
  std::map<std::string, int> by_outcome;
  std::map<std::string, std::map<std::string, int>> by_kind;
  int failed_requests = 0;
  int64_t images = 0;
  int not_sent = 0;
  int time_limit_cancelled = 0;
  std::vector<double> ok_latency, all_latency, first_event;
  for (const auto& o : kOutcomes) by_outcome[o] = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    if (!r.sent) {
      ++not_sent;
      continue;
    }
    sent.push_back(&r);
    ++by_outcome[r.outcome];
    ++by_kind[KindName(plans[i].kind)][r.outcome];
    if (!r.problems.empty()) ++failed_requests;
    if (r.outcome == "ok") {
      images += r.images_received;
      ok_latency.push_back(r.latency_s);
    }
    if (r.flags.time_limit && r.outcome == "cancelled") ++time_limit_cancelled;
    all_latency.push_back(r.latency_s);
    if (r.first_event_s >= 0) first_event.push_back(r.first_event_s);
  }

  // The server after the run: idle, and its counters moved by exactly what was sent.
  Scrape after;
  if (metrics.enabled) {
    const auto settle_start = SteadyClock::now();
    std::optional<Scrape> previous;
    while (true) {
      after = ScrapeMetrics(opt.metrics);
      if (!after.ok) {
        metrics.problems.push_back("metrics scrape after the run failed: " + after.error);
        break;
      }
      metrics.final_queue_depth = after.Get("vqd_queue_depth", -1);
      metrics.final_active_requests = after.Sum("vqd_active_requests");
      const bool idle = metrics.final_queue_depth == 0 && metrics.final_active_requests == 0;
      bool stable = previous.has_value();
      if (stable) {
        for (const auto& o : kOutcomes) stable &= previous->Get(OutcomeKey(o)) == after.Get(OutcomeKey(o));
        stable &= previous->Get("vqd_images_generated_total") == after.Get("vqd_images_generated_total");
      }
      if (idle && stable) {
        metrics.settled = true;
        break;
      }
      if (Seconds(SteadyClock::now() - settle_start) > opt.settle_timeout) {
        metrics.problems.push_back(absl::StrFormat(
            "the server did not go idle within %.0f s after the run: vqd_queue_depth %g, vqd_active_requests %g%s",
            opt.settle_timeout, metrics.final_queue_depth, metrics.final_active_requests,
            stable ? "" : ", counters still moving"));
        break;
      }
      previous = after;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    metrics.settle_seconds = Seconds(SteadyClock::now() - settle_start);
    if (after.ok) {
      for (const auto& o : kOutcomes) metrics.delta[o] = after.Get(OutcomeKey(o)) - before.Get(OutcomeKey(o));
      metrics.images_delta = after.Get("vqd_images_generated_total") - before.Get("vqd_images_generated_total");
      CheckAssignment(sent, metrics.delta, &metrics.problems);
      // Images.
      const double client_ok = by_outcome["ok"];
      const double racy_ok = metrics.delta["ok"] - client_ok;
      std::vector<uint32_t> racy_images;
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        if (r.sent && r.outcome != "ok" && r.allowed_server.count("ok")) racy_images.push_back(plans[i].num_images);
      }
      std::sort(racy_images.begin(), racy_images.end());
      const double extra = metrics.images_delta - static_cast<double>(images);
      if (racy_ok < 0 || racy_ok > racy_images.size()) {
        // Already reported by the assignment check.
        if (metrics.problems.empty()) {
          metrics.problems.push_back(
              absl::StrFormat("metrics: ok moved by %.0f for %.0f client OKs", metrics.delta["ok"], client_ok));
        }
      } else {
        const size_t r = static_cast<size_t>(racy_ok);
        double lo = 0, hi = 0;
        for (size_t k = 0; k < r; ++k) {
          lo += racy_images[k];
          hi += racy_images[racy_images.size() - 1 - k];
        }
        if (extra < lo - 0.5 || extra > hi + 0.5) {
          metrics.problems.push_back(absl::StrFormat(
              "metrics: vqd_images_generated_total moved by %.0f; the client received %d images in OK streams, and "
              "the %d requests the server finished ok while the client gave up account for %.0f..%.0f more",
              metrics.images_delta, static_cast<int>(images), static_cast<int>(r), lo, hi));
        }
      }
    }
  }

  double rss_start = 0, rss_peak = 0, rss_end = 0, rss_warm = -1;
  std::vector<std::string> rss_problems;
  if (rss) {
    rss_end = rss->SampleNow();
    rss->Stop();
    rss_start = rss->start_mb();
    rss_peak = rss->peak_mb();
    rss_warm = rss->warm_mb();
    rss_problems = rss->problems();
    if (opt.rss_growth_limit_mb > 0) {
      if (rss_warm < 0) {
        rss_problems.push_back("no warmed-up RSS sample to measure growth from (the run was too short)");
      } else if (rss_end - rss_warm > opt.rss_growth_limit_mb) {
        rss_problems.push_back(
            absl::StrFormat("RSS grew by %.1f MiB from %.1f MiB (warmed up) to %.1f MiB (idle again at the end), more "
                            "than the %.1f MiB "
                            "allowed: a leak?",
                            rss_end - rss_warm, rss_warm, rss_end, opt.rss_growth_limit_mb));
      }
    }
  }

  // Summary.
  const int total_failures =
      failed_requests + static_cast<int>(metrics.problems.size()) + static_cast<int>(rss_problems.size());
  const double ok_per_s = run_seconds > 0 ? by_outcome["ok"] / run_seconds : 0;
  const double images_per_s = run_seconds > 0 ? static_cast<double>(images) / run_seconds : 0;
  std::ostringstream out;
  out << absl::StrFormat("vqd-loadgen summary: %d requests sent in %.1f s (%d planned, %d not sent%s)\n",
                         static_cast<int>(sent.size()), run_seconds, static_cast<int>(plans.size()), not_sent,
                         time_limit_hit ? ", time limit reached" : "");
  out << "  by outcome:";
  for (const auto& o : kOutcomes) out << " " << o << "=" << by_outcome[o];
  out << absl::StrFormat("  (cancelled at the time limit: %d)\n", time_limit_cancelled);
  for (const auto& [kind, m] : by_kind) {
    out << "  " << kind << ":";
    for (const auto& [o, n] : m) out << " " << o << "=" << n;
    out << "\n";
  }
  out << absl::StrFormat("  images received: %d; throughput %.2f ok requests/s, %.2f images/s\n",
                         static_cast<int>(images), ok_per_s, images_per_s);
  out << absl::StrFormat("  latency of ok requests: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s\n",
                         Percentile(ok_latency, 50), Percentile(ok_latency, 90), Percentile(ok_latency, 99),
                         Percentile(ok_latency, 100));
  out << absl::StrFormat("  latency of all requests: p50 %.3f s, p99 %.3f s; first event p50 %.3f s, p99 %.3f s\n",
                         Percentile(all_latency, 50), Percentile(all_latency, 99), Percentile(first_event, 50),
                         Percentile(first_event, 99));
  if (metrics.enabled) {
    out << "  server counters moved by:";
    for (const auto& o : kOutcomes) out << " " << o << "=" << metrics.delta[o];
    out << absl::StrFormat(" images=%.0f; idle after %.1f s\n", metrics.images_delta, metrics.settle_seconds);
  }
  if (rss) {
    out << absl::StrFormat(
        "  server RSS (pid %d): start %.1f MiB, warmed up %.1f MiB, peak %.1f MiB, end %.1f MiB (growth since warm-up "
        "%.1f MiB)%s%s\n",
        static_cast<int>(opt.rss_pid), rss_start, rss_warm, rss_peak, rss_end, rss_warm >= 0 ? rss_end - rss_warm : 0.0,
        opt.rss_limit_mb > 0 ? absl::StrFormat("; limit %.1f MiB", opt.rss_limit_mb) : "",
        opt.rss_growth_limit_mb > 0 ? absl::StrFormat("; growth limit %.1f MiB", opt.rss_growth_limit_mb) : "");
  }
  for (const auto& p : metrics.problems) out << "  FAIL " << p << "\n";
  for (const auto& p : rss_problems) out << "  FAIL " << p << "\n";
  out << absl::StrFormat("  %d failed requests; %s\n", failed_requests, total_failures == 0 ? "PASS" : "FAIL");
  std::cout << out.str() << std::flush;

  if (!opt.report.empty()) {
    std::ostringstream j;
    j << "{\n";
    j << "  \"server\": " << Quote(opt.server) << ",\n";
    j << "  \"config\": {\"requests\": " << opt.requests << ", \"concurrency\": " << opt.concurrency
      << ", \"time_limit_s\": " << JsonNumber(opt.time_limit) << ", \"seed\": " << opt.seed
      << ", \"invalid_fraction\": " << JsonNumber(opt.invalid_fraction)
      << ", \"cancel_fraction\": " << JsonNumber(opt.cancel_fraction)
      << ", \"deadline_fraction\": " << JsonNumber(opt.deadline_fraction) << ", \"max_steps\": " << max_steps
      << ", \"max_images\": " << max_images << ", \"rss_limit_mb\": " << JsonNumber(opt.rss_limit_mb)
      << ", \"rss_growth_limit_mb\": " << JsonNumber(opt.rss_growth_limit_mb)
      << ", \"reject_backoff_ms\": " << JsonNumber(opt.reject_backoff_ms) << "},\n";
    j << "  \"passed\": " << (total_failures == 0 ? "true" : "false") << ",\n";
    j << "  \"failures\": " << total_failures << ",\n";
    j << "  \"failed_requests\": " << failed_requests << ",\n";
    j << "  \"sent\": " << sent.size() << ",\n";
    j << "  \"not_sent\": " << not_sent << ",\n";
    j << "  \"time_limit_reached\": " << (time_limit_hit ? "true" : "false") << ",\n";
    j << "  \"cancelled_at_time_limit\": " << time_limit_cancelled << ",\n";
    j << "  \"run_seconds\": " << JsonNumber(run_seconds) << ",\n";
    j << "  \"outcomes\": {";
    for (size_t i = 0; i < kOutcomes.size(); ++i)
      j << (i ? ", " : "") << Quote(kOutcomes[i]) << ": " << by_outcome[kOutcomes[i]];
    j << "},\n";
    j << "  \"outcomes_by_kind\": {";
    bool first = true;
    for (const auto& [kind, m] : by_kind) {
      j << (first ? "" : ", ") << Quote(kind) << ": {";
      first = false;
      bool f2 = true;
      for (const auto& [o, n] : m) {
        j << (f2 ? "" : ", ") << Quote(o) << ": " << n;
        f2 = false;
      }
      j << "}";
    }
    j << "},\n";
    j << "  \"images\": " << images << ",\n";
    j << "  \"throughput\": {\"ok_requests_per_s\": " << JsonNumber(ok_per_s)
      << ", \"images_per_s\": " << JsonNumber(images_per_s) << "},\n";
    j << "  \"latency_ok_s\": {\"p50\": " << JsonNumber(Percentile(ok_latency, 50))
      << ", \"p90\": " << JsonNumber(Percentile(ok_latency, 90))
      << ", \"p99\": " << JsonNumber(Percentile(ok_latency, 99))
      << ", \"max\": " << JsonNumber(Percentile(ok_latency, 100)) << "},\n";
    j << "  \"latency_all_s\": {\"p50\": " << JsonNumber(Percentile(all_latency, 50))
      << ", \"p99\": " << JsonNumber(Percentile(all_latency, 99)) << "},\n";
    if (metrics.enabled) {
      j << "  \"metrics\": {\"settled\": " << (metrics.settled ? "true" : "false")
        << ", \"settle_seconds\": " << JsonNumber(metrics.settle_seconds)
        << ", \"final_queue_depth\": " << JsonNumber(metrics.final_queue_depth)
        << ", \"final_active_requests\": " << JsonNumber(metrics.final_active_requests) << ", \"requests_delta\": {";
      for (size_t i = 0; i < kOutcomes.size(); ++i) {
        j << (i ? ", " : "") << Quote(kOutcomes[i]) << ": " << JsonNumber(metrics.delta[kOutcomes[i]]);
      }
      j << "}, \"images_delta\": " << JsonNumber(metrics.images_delta) << ", \"problems\": [";
      for (size_t i = 0; i < metrics.problems.size(); ++i) j << (i ? ", " : "") << Quote(metrics.problems[i]);
      j << "]},\n";
    }
    if (rss) {
      j << "  \"rss_mb\": {\"pid\": " << opt.rss_pid << ", \"start\": " << JsonNumber(rss_start)
        << ", \"warm\": " << JsonNumber(rss_warm) << ", \"peak\": " << JsonNumber(rss_peak)
        << ", \"end\": " << JsonNumber(rss_end)
        << ", \"growth_since_warm\": " << JsonNumber(rss_warm >= 0 ? rss_end - rss_warm : std::nan(""))
        << ", \"limit\": " << JsonNumber(opt.rss_limit_mb)
        << ", \"growth_limit\": " << JsonNumber(opt.rss_growth_limit_mb) << ", \"problems\": [";
      for (size_t i = 0; i < rss_problems.size(); ++i) j << (i ? ", " : "") << Quote(rss_problems[i]);
      j << "]},\n";
    }
    j << "  \"failed\": [";
    int listed = 0;
    for (size_t i = 0; i < results.size() && listed < 100; ++i) {
      const Result& r = results[i];
      if (!r.sent || r.problems.empty()) continue;
      j << (listed ? ",\n    " : "\n    ") << "{\"request_id\": " << Quote(plans[i].request.request_id())
        << ", \"kind\": " << Quote(KindName(plans[i].kind)) << ", \"status\": " << Quote(CodeName(r.code))
        << ", \"message\": " << Quote(r.message) << ", \"events\": " << r.events << ", \"problems\": [";
      for (size_t k = 0; k < r.problems.size(); ++k) j << (k ? ", " : "") << Quote(r.problems[k]);
      j << "]}";
      ++listed;
    }
    j << (listed ? "\n  ]\n" : "]\n");
    j << "}\n";
    std::ofstream f(opt.report);
    f << j.str();
    if (!f) {
      std::cerr << "vqd-loadgen: cannot write " << opt.report << "\n";
      return 1;
    }
  }
  return total_failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> argv_list(argv + 1, argv + argc);
  auto parsed =
      vqd::CliArgs::Parse(argv_list,
                          {"server", "requests", "concurrency", "time-limit", "seed", "metrics", "invalid-fraction",
                           "cancel-fraction", "deadline-fraction", "max-steps", "max-images", "rss-pid", "rss-limit-mb",
                           "settle-timeout", "channels", "report", "reject-backoff-ms", "rss-growth-limit-mb"},
                          {"help", "verbose"});
  if (!parsed.ok()) return Usage(std::string(parsed.status().message()));
  const vqd::CliArgs& args = *parsed;
  if (args.Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (!args.positional().empty()) return Usage("unexpected argument " + args.positional().front());
  Options opt;
  auto server = args.Required("server");
  if (!server.ok()) return Usage(std::string(server.status().message()));
  opt.server = *server;
  auto get_int = [&](const std::string& name, int64_t def, int64_t lo, int64_t* out) -> bool {
    auto v = args.Int(name, def);
    if (!v.ok()) return Usage(std::string(v.status().message())), false;
    if (*v < lo) return Usage(absl::StrCat("--", name, " must be at least ", lo)), false;
    *out = *v;
    return true;
  };
  auto get_double = [&](const std::string& name, double def, double lo, double hi, double* out) -> bool {
    auto v = args.Double(name, def);
    if (!v.ok()) return Usage(std::string(v.status().message())), false;
    if (!(*v >= lo && *v <= hi)) return Usage(absl::StrCat("--", name, " must be in [", lo, ", ", hi, "]")), false;
    *out = *v;
    return true;
  };
  if (!args.Has("requests") || !args.Has("concurrency") || !args.Has("time-limit")) {
    return Usage("--requests, --concurrency and --time-limit are required");
  }
  if (!get_int("requests", 0, 1, &opt.requests) || !get_int("concurrency", 1, 1, &opt.concurrency) ||
      !get_double("time-limit", 0, 0.001, 1e7, &opt.time_limit) || !get_int("max-steps", 20, 1, &opt.max_steps) ||
      !get_int("max-images", 4, 1, &opt.max_images) || !get_int("rss-pid", 0, 0, &opt.rss_pid) ||
      !get_double("rss-limit-mb", 0, 0, 1e9, &opt.rss_limit_mb) ||
      !get_double("rss-growth-limit-mb", 0, 0, 1e9, &opt.rss_growth_limit_mb) ||
      !get_double("settle-timeout", 60, 0, 1e6, &opt.settle_timeout) ||
      !get_double("reject-backoff-ms", 250, 0, 1e6, &opt.reject_backoff_ms) ||
      !get_int("channels", 4, 1, &opt.channels) || !get_double("invalid-fraction", 0, 0, 1, &opt.invalid_fraction) ||
      !get_double("cancel-fraction", 0, 0, 1, &opt.cancel_fraction) ||
      !get_double("deadline-fraction", 0, 0, 1, &opt.deadline_fraction)) {
    return 2;
  }
  if (opt.invalid_fraction + opt.cancel_fraction + opt.deadline_fraction > 1.0 + 1e-9) {
    return Usage("the invalid, cancel and deadline fractions add up to more than 1");
  }
  if (opt.concurrency > 4096) return Usage("--concurrency must be at most 4096");
  if ((opt.rss_limit_mb > 0 || opt.rss_growth_limit_mb > 0) && opt.rss_pid == 0) {
    return Usage("--rss-limit-mb and --rss-growth-limit-mb need --rss-pid");
  }
  auto seed = args.Uint("seed", 1);
  if (!seed.ok()) return Usage(std::string(seed.status().message()));
  opt.seed = *seed;
  opt.metrics = args.Get("metrics").value_or("");
  opt.report = args.Get("report").value_or("");
  opt.verbose = args.Has("verbose");
  return Run(opt);
}
