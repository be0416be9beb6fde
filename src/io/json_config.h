// Typed, error-reporting access to a JSON config file (diffusers' config.json, model_index.json,
// scheduler_config.json). Getters return a status naming the file and the key, so a bad config
// says exactly what is wrong; unknown keys are ignored.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vqd::io {

// A value type: immutable after Load/Parse, cheap enough to copy, safe to share const between
// threads.
class JsonConfig {
 public:
  static constexpr uint64_t kMaxFileBytes = 16ull << 20;

  // Reads and parses `path`; its root must be a JSON object.
  static absl::StatusOr<JsonConfig> Load(const std::string& path);
  // Parses `text`; `path_for_errors` names it in messages.
  static absl::StatusOr<JsonConfig> Parse(std::string_view text, std::string path_for_errors);
  // Wraps a JSON object built elsewhere (a YAML file read into JSON values).
  static absl::StatusOr<JsonConfig> FromJson(nlohmann::json json, std::string path_for_errors);

  // Whether `key` is present (a JSON null counts as present here, but as absent for the ...Or getters).
  bool Has(const std::string& key) const;

  // Required values: NotFound when absent, InvalidArgument when of the wrong type.
  absl::StatusOr<int64_t> Int(const std::string& key) const;
  absl::StatusOr<double> Float(const std::string& key) const;  // Integers are accepted too.
  absl::StatusOr<bool> Bool(const std::string& key) const;
  absl::StatusOr<std::string> String(const std::string& key) const;
  absl::StatusOr<std::vector<int64_t>> IntList(const std::string& key) const;
  absl::StatusOr<std::vector<double>> FloatList(const std::string& key) const;
  absl::StatusOr<std::vector<std::string>> StringList(const std::string& key) const;
  // A nested object as a config of its own; its errors name "key.subkey".
  absl::StatusOr<JsonConfig> Object(const std::string& key) const;

  // Optional values: `fallback` when absent or null, InvalidArgument when of the wrong type.
  absl::StatusOr<int64_t> IntOr(const std::string& key, int64_t fallback) const;
  absl::StatusOr<double> FloatOr(const std::string& key, double fallback) const;
  absl::StatusOr<bool> BoolOr(const std::string& key, bool fallback) const;
  absl::StatusOr<std::string> StringOr(const std::string& key, std::string fallback) const;
  absl::StatusOr<std::vector<int64_t>> IntListOr(const std::string& key, std::vector<int64_t> fallback) const;
  absl::StatusOr<std::vector<double>> FloatListOr(const std::string& key, std::vector<double> fallback) const;
  absl::StatusOr<std::vector<std::string>> StringListOr(const std::string& key,
                                                        std::vector<std::string> fallback) const;

  const nlohmann::json& json() const { return json_; }
  const std::string& path() const { return path_; }

 private:
  JsonConfig(nlohmann::json json, std::string path, std::string key_prefix)
      : json_(std::move(json)), path_(std::move(path)), key_prefix_(std::move(key_prefix)) {}

  // The value of `key`, or nullptr when absent (or null, if `null_is_absent`).
  const nlohmann::json* Find(const std::string& key, bool null_is_absent) const;
  absl::StatusOr<const nlohmann::json*> Require(const std::string& key) const;
  absl::Status TypeError(const std::string& key, std::string_view expected, const nlohmann::json& got) const;

  template <typename T>
  absl::StatusOr<T> Convert(const std::string& key, const nlohmann::json& value) const;
  template <typename T>
  absl::StatusOr<T> Get(const std::string& key) const;
  template <typename T>
  absl::StatusOr<T> GetOr(const std::string& key, T fallback) const;

  nlohmann::json json_;
  std::string path_;
  std::string key_prefix_;  // "unet." for a nested object, for messages.
};

}  // namespace vqd::io
