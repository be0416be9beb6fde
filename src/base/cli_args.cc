#include "base/cli_args.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"

namespace vqd {

absl::StatusOr<CliArgs> CliArgs::Parse(const std::vector<std::string>& args, const std::set<std::string>& valued,
                                       const std::set<std::string>& switches) {
  CliArgs out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      out.positional_.insert(out.positional_.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      out.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.count(name)) {
      if (value) return absl::InvalidArgumentError(absl::StrCat("--", name, " takes no value"));
      out.switches_.insert(name);
      continue;
    }
    if (!valued.count(name)) return absl::InvalidArgumentError(absl::StrCat("unknown option --", name));
    if (!value) {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
      value = args[++i];
    }
    out.values_[name] = *value;
  }
  return out;
}

std::optional<std::string> CliArgs::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::string> CliArgs::Required(const std::string& name) const {
  auto v = Get(name);
  if (!v) return absl::InvalidArgumentError(absl::StrCat("--", name, " is required"));
  return *v;
}

absl::StatusOr<int64_t> CliArgs::Int(const std::string& name, int64_t default_value) const {
  auto v = Get(name);
  if (!v) return default_value;
  int64_t out;
  if (!absl::SimpleAtoi(*v, &out)) return absl::InvalidArgumentError(absl::StrCat("--", name, " must be an integer, got \"", *v, "\""));
  return out;
}

absl::StatusOr<uint64_t> CliArgs::Uint(const std::string& name, uint64_t default_value) const {
  auto v = Get(name);
  if (!v) return default_value;
  uint64_t out;
  if (!absl::SimpleAtoi(*v, &out)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, " must be a non-negative integer, got \"", *v, "\""));
  }
  return out;
}

absl::StatusOr<double> CliArgs::Double(const std::string& name, double default_value) const {
  auto v = Get(name);
  if (!v) return default_value;
  double out;
  if (!absl::SimpleAtod(*v, &out)) return absl::InvalidArgumentError(absl::StrCat("--", name, " must be a number, got \"", *v, "\""));
  return out;
}

}  // namespace vqd
