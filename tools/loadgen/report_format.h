// How the summary and the JSON report write their figures: JSON strings (quoted and escaped)
// and numbers (null where not finite), and nearest-rank percentiles of a set of timings.
#pragma once

#include <string>
#include <vector>

namespace vqd::loadgen {

// `s` as a JSON string, quotes included.
std::string Quote(const std::string& s);
// `v` as a JSON number; null when it is not finite.
std::string JsonNumber(double v);
// The nearest-rank `p`th percentile of `v` (p in [0, 100]); NaN when `v` is empty.
double Percentile(std::vector<double> v, double p);

}  // namespace vqd::loadgen
