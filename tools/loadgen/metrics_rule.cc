#include "metrics_rule.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vqd::loadgen {

const std::vector<std::string> kOutcomes = {"ok", "invalid", "rejected", "cancelled", "deadline", "error"};

std::string OutcomeKey(const std::string& outcome) {
  return absl::StrCat("vqd_requests_total{outcome=\"", outcome, "\"}");
}

std::set<std::string> AllowedServerLabels(Kind kind, const std::string& o, bool got_queued) {
  std::set<std::string> s;
  const bool loose = !got_queued;
  if (o == "ok" || o == "invalid" || o == "rejected") {
    s = {o};
  } else if (o == "cancelled") {
    s = {"cancelled", "ok"};
    if (kind == Kind::kDeadline) s.insert("deadline");
    if (loose) {
      s.insert("none");
      s.insert(kind == Kind::kInvalid ? "invalid" : "rejected");
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
  return s;
}

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

void CheckImages(const std::vector<Plan>& plans, const std::vector<Result>& results, double client_ok, int64_t images,
                 MetricsCheck* metrics) {
  const double racy_ok = metrics->delta["ok"] - client_ok;
  std::vector<uint32_t> racy_images;
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    if (r.sent && r.outcome != "ok" && r.allowed_server.count("ok")) racy_images.push_back(plans[i].num_images);
  }
  std::sort(racy_images.begin(), racy_images.end());
  const double extra = metrics->images_delta - static_cast<double>(images);
  if (racy_ok < 0 || racy_ok > racy_images.size()) {
    // Already reported by the assignment check.
    if (metrics->problems.empty()) {
      metrics->problems.push_back(
          absl::StrFormat("metrics: ok moved by %.0f for %.0f client OKs", metrics->delta["ok"], client_ok));
    }
  } else {
    const size_t r = static_cast<size_t>(racy_ok);
    double lo = 0, hi = 0;
    for (size_t k = 0; k < r; ++k) {
      lo += racy_images[k];
      hi += racy_images[racy_images.size() - 1 - k];
    }
    if (extra < lo - 0.5 || extra > hi + 0.5) {
      metrics->problems.push_back(absl::StrFormat(
          "metrics: vqd_images_generated_total moved by %.0f; the client received %d images in OK streams, and "
          "the %d requests the server finished ok while the client gave up account for %.0f..%.0f more",
          metrics->images_delta, static_cast<int>(images), static_cast<int>(r), lo, hi));
    }
  }
}

}  // namespace vqd::loadgen
