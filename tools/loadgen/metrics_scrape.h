// Metrics: a tiny HTTP/1.0 GET and a parser for the text exposition format. ScrapeMetrics reads
// the server's Prometheus endpoint (/metrics) and gives every sample under its name and labels
// exactly as printed.
#pragma once

#include <map>
#include <string>

namespace vqd::loadgen {

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

// GET /metrics from `address` (HOST:PORT); on failure `ok` is false and `error` says why.
Scrape ScrapeMetrics(const std::string& address);

}  // namespace vqd::loadgen
