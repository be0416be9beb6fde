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

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/cli_args.h"
#include "call_checks.h"
#include "call_registry.h"
#include "metrics_rule.h"
#include "metrics_scrape.h"
#include "report_format.h"
#include "request_plan.h"
#include "rss_sampler.h"
#include "vqdiffusion/v1/vqdiffusion.grpc.pb.h"

namespace vqd::loadgen {
namespace {

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
  // Latency of ok requests by priority band, to see starvation (and --priority-aging against it).
  const std::vector<std::string> kBands = {"lowest", "negative", "zero", "positive", "highest"};
  auto band_of = [](int32_t priority) -> std::string {
    if (priority == INT32_MIN) return "lowest";
    if (priority == INT32_MAX) return "highest";
    return priority < 0 ? "negative" : priority == 0 ? "zero" : "positive";
  };
  std::map<std::string, std::vector<double>> ok_latency_by_band;
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
      ok_latency_by_band[band_of(plans[i].request.priority())].push_back(r.latency_s);
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
      CheckImages(plans, results, by_outcome["ok"], images, &metrics);
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
  out << "  latency of ok requests by priority (p50/p99 s, count):";
  for (const auto& band : kBands) {
    const std::vector<double>& v = ok_latency_by_band[band];
    out << absl::StrFormat(" %s %.3f/%.3f (%d)", band, Percentile(v, 50), Percentile(v, 99), static_cast<int>(v.size()));
  }
  out << "\n";
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
    j << "  \"latency_ok_by_priority_s\": {";
    for (size_t b = 0; b < kBands.size(); ++b) {
      const std::vector<double>& v = ok_latency_by_band[kBands[b]];
      j << (b == 0 ? "" : ", ") << Quote(kBands[b]) << ": {\"count\": " << v.size()
        << ", \"p50\": " << JsonNumber(Percentile(v, 50)) << ", \"p99\": " << JsonNumber(Percentile(v, 99)) << "}";
    }
    j << "},\n";
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
}  // namespace vqd::loadgen

using vqd::loadgen::kUsage;
using vqd::loadgen::Options;
using vqd::loadgen::Run;
using vqd::loadgen::Usage;

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
