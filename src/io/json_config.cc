#include "io/json_config.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "io/file_util.h"

namespace vqd::io {
namespace {

// nlohmann's type_name() says "number" for both; configs care about the difference.
std::string Describe(const nlohmann::json& value) {
  if (value.is_number_integer()) return "integer";
  if (value.is_number_float()) return "float";
  return value.type_name();
}

}  // namespace

absl::StatusOr<JsonConfig> JsonConfig::Load(const std::string& path) {
  VQD_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxFileBytes));
  return Parse(text, path);
}

absl::StatusOr<JsonConfig> JsonConfig::Parse(std::string_view text, std::string path_for_errors) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path_for_errors, ": invalid JSON: ", e.what()));
  }
  return FromJson(std::move(json), std::move(path_for_errors));
}

absl::StatusOr<JsonConfig> JsonConfig::FromJson(nlohmann::json json, std::string path_for_errors) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_for_errors, ": the top level must be a JSON object, got ", Describe(json)));
  }
  return JsonConfig(std::move(json), std::move(path_for_errors), "");
}

const nlohmann::json* JsonConfig::Find(const std::string& key, bool null_is_absent) const {
  const auto it = json_.find(key);
  if (it == json_.end() || (null_is_absent && it->is_null())) return nullptr;
  return &*it;
}

bool JsonConfig::Has(const std::string& key) const { return Find(key, /*null_is_absent=*/false) != nullptr; }

absl::StatusOr<const nlohmann::json*> JsonConfig::Require(const std::string& key) const {
  const nlohmann::json* value = Find(key, /*null_is_absent=*/false);
  if (value == nullptr) {
    return absl::NotFoundError(absl::StrCat(path_, ": required key \"", key_prefix_, key, "\" is missing"));
  }
  return value;
}

absl::Status JsonConfig::TypeError(const std::string& key, std::string_view expected, const nlohmann::json& got) const {
  return absl::InvalidArgumentError(
      absl::StrCat(path_, ": key \"", key_prefix_, key, "\" must be ", std::string(expected), ", got ", Describe(got)));
}

template <>
absl::StatusOr<int64_t> JsonConfig::Convert(const std::string& key, const nlohmann::json& value) const {
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return TypeError(key, "a 64-bit integer", value);
    return static_cast<int64_t>(value.get<uint64_t>());
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  return TypeError(key, "an integer", value);
}

template <>
absl::StatusOr<double> JsonConfig::Convert(const std::string& key, const nlohmann::json& value) const {
  if (!value.is_number()) return TypeError(key, "a number", value);
  return value.get<double>();
}

template <>
absl::StatusOr<bool> JsonConfig::Convert(const std::string& key, const nlohmann::json& value) const {
  if (!value.is_boolean()) return TypeError(key, "a boolean", value);
  return value.get<bool>();
}

template <>
absl::StatusOr<std::string> JsonConfig::Convert(const std::string& key, const nlohmann::json& value) const {
  if (!value.is_string()) return TypeError(key, "a string", value);
  return value.get<std::string>();
}

// Lists: every element converted as its scalar type; errors name the element ("key[2]").
#define VQD_JSON_LIST_CONVERT(T)                                                                                  \
  template <>                                                                                                     \
  absl::StatusOr<std::vector<T>> JsonConfig::Convert(const std::string& key, const nlohmann::json& value) const { \
    if (!value.is_array()) return TypeError(key, "an array", value);                                              \
    std::vector<T> out;                                                                                           \
    out.reserve(value.size());                                                                                    \
    for (size_t i = 0; i < value.size(); ++i) {                                                                   \
      VQD_ASSIGN_OR_RETURN(T item, Convert<T>(absl::StrCat(key, "[", i, "]"), value[i]));                         \
      out.push_back(std::move(item));                                                                             \
    }                                                                                                             \
    return out;                                                                                                   \
  }
VQD_JSON_LIST_CONVERT(int64_t)
VQD_JSON_LIST_CONVERT(double)
VQD_JSON_LIST_CONVERT(std::string)
#undef VQD_JSON_LIST_CONVERT

template <typename T>
absl::StatusOr<T> JsonConfig::Get(const std::string& key) const {
  VQD_ASSIGN_OR_RETURN(const nlohmann::json* value, Require(key));
  return Convert<T>(key, *value);
}

template <typename T>
absl::StatusOr<T> JsonConfig::GetOr(const std::string& key, T fallback) const {
  const nlohmann::json* value = Find(key, /*null_is_absent=*/true);
  if (value == nullptr) return fallback;
  return Convert<T>(key, *value);
}

absl::StatusOr<int64_t> JsonConfig::Int(const std::string& key) const { return Get<int64_t>(key); }
absl::StatusOr<double> JsonConfig::Float(const std::string& key) const { return Get<double>(key); }
absl::StatusOr<bool> JsonConfig::Bool(const std::string& key) const { return Get<bool>(key); }
absl::StatusOr<std::string> JsonConfig::String(const std::string& key) const { return Get<std::string>(key); }
absl::StatusOr<std::vector<int64_t>> JsonConfig::IntList(const std::string& key) const {
  return Get<std::vector<int64_t>>(key);
}
absl::StatusOr<std::vector<double>> JsonConfig::FloatList(const std::string& key) const {
  return Get<std::vector<double>>(key);
}
absl::StatusOr<std::vector<std::string>> JsonConfig::StringList(const std::string& key) const {
  return Get<std::vector<std::string>>(key);
}

absl::StatusOr<JsonConfig> JsonConfig::Object(const std::string& key) const {
  VQD_ASSIGN_OR_RETURN(const nlohmann::json* value, Require(key));
  if (!value->is_object()) return TypeError(key, "an object", *value);
  return JsonConfig(*value, path_, absl::StrCat(key_prefix_, key, "."));
}

absl::StatusOr<int64_t> JsonConfig::IntOr(const std::string& key, int64_t fallback) const {
  return GetOr<int64_t>(key, fallback);
}
absl::StatusOr<double> JsonConfig::FloatOr(const std::string& key, double fallback) const {
  return GetOr<double>(key, fallback);
}
absl::StatusOr<bool> JsonConfig::BoolOr(const std::string& key, bool fallback) const {
  return GetOr<bool>(key, fallback);
}
absl::StatusOr<std::string> JsonConfig::StringOr(const std::string& key, std::string fallback) const {
  return GetOr<std::string>(key, std::move(fallback));
}
absl::StatusOr<std::vector<int64_t>> JsonConfig::IntListOr(const std::string& key,
                                                           std::vector<int64_t> fallback) const {
  return GetOr<std::vector<int64_t>>(key, std::move(fallback));
}
absl::StatusOr<std::vector<double>> JsonConfig::FloatListOr(const std::string& key,
                                                            std::vector<double> fallback) const {
  return GetOr<std::vector<double>>(key, std::move(fallback));
}
absl::StatusOr<std::vector<std::string>> JsonConfig::StringListOr(const std::string& key,
                                                                  std::vector<std::string> fallback) const {
  return GetOr<std::vector<std::string>>(key, std::move(fallback));
}

}  // namespace vqd::io
