// A small parser for subcommand-style command lines ("vqd generate --model DIR --steps 10"):
// --name value, --name=value, bare --switch, and positional words. The tools declare which
// names they accept, so a typo is a usage error instead of being ignored.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vqd {

class CliArgs {
 public:
  // `valued`: options that take a value; `switches`: options that do not.
  static absl::StatusOr<CliArgs> Parse(const std::vector<std::string>& args, const std::set<std::string>& valued,
                                       const std::set<std::string>& switches = {});

  bool Has(const std::string& name) const { return values_.count(name) != 0 || switches_.count(name) != 0; }
  std::optional<std::string> Get(const std::string& name) const;
  absl::StatusOr<std::string> Required(const std::string& name) const;
  absl::StatusOr<int64_t> Int(const std::string& name, int64_t default_value) const;
  absl::StatusOr<uint64_t> Uint(const std::string& name, uint64_t default_value) const;
  absl::StatusOr<double> Double(const std::string& name, double default_value) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> switches_;
  std::vector<std::string> positional_;
};

}  // namespace vqd
