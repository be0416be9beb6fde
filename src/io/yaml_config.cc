#include "io/yaml_config.h"

#include <yaml.h>

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "io/file_util.h"

namespace vqd::io {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxDepth = 64;
constexpr size_t kMaxNodes = 1u << 20;

constexpr char kTagPrefix[] = "tag:yaml.org,2002:";

std::string WithoutUnderscores(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out.push_back(c);
  }
  return out;
}

bool IsDigits(std::string_view s, std::string_view digits) {
  return !s.empty() && s.find_first_not_of(digits) == std::string_view::npos;
}

// PyYAML's int resolver without the sexagesimal form: [-+]? then 0b..., 0x..., 0[0-7_]+ (octal)
// or 0 | [1-9][0-9_]*.
std::optional<Json> ResolveInt(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  std::string_view digits = s;
  if (s.size() > 2 && s[0] == '0' && s[1] == 'b') {
    base = 2;
    digits = s.substr(2);
    if (!IsDigits(digits, "01_")) return std::nullopt;
  } else if (s.size() > 2 && s[0] == '0' && s[1] == 'x') {
    base = 16;
    digits = s.substr(2);
    if (!IsDigits(digits, "0123456789abcdefABCDEF_")) return std::nullopt;
  } else if (s.size() > 1 && s[0] == '0') {
    base = 8;
    digits = s.substr(1);
    if (!IsDigits(digits, "01234567_")) return std::nullopt;
  } else if (s == "0" || (!s.empty() && s[0] >= '1' && s[0] <= '9' && IsDigits(s, "0123456789_"))) {
    digits = s;
  } else {
    return std::nullopt;
  }
  const std::string clean = WithoutUnderscores(digits);
  if (clean.empty()) return std::nullopt;
  uint64_t magnitude = 0;
  for (char c : clean) {
    const int d = absl::ascii_isdigit(static_cast<unsigned char>(c)) ? c - '0' : absl::ascii_tolower(c) - 'a' + 10;
    if (magnitude > (std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      return std::nullopt;  // beyond 64 bits: kept as a string rather than rounded
    }
    magnitude = magnitude * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (negative) {
    if (magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return std::nullopt;
    return Json(static_cast<int64_t>(0 - magnitude));
  }
  if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Json(static_cast<int64_t>(magnitude));
  }
  return Json(magnitude);
}

// PyYAML's float resolver without the sexagesimal form: a dot is required (so 1e-6 is a string),
// an exponent needs its sign, and .inf / .nan in three spellings.
std::optional<Json> ResolveFloat(std::string_view s) {
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    return Json(negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity());
  }
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return Json(std::numeric_limits<double>::quiet_NaN());
  const size_t dot = body.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  std::string_view whole = body.substr(0, dot);
  std::string_view rest = body.substr(dot + 1);
  std::string_view fraction = rest;
  std::string_view exponent;
  if (const size_t e = rest.find_first_of("eE"); e != std::string_view::npos) {
    fraction = rest.substr(0, e);
    exponent = rest.substr(e + 1);
    if (exponent.size() < 2 || (exponent[0] != '-' && exponent[0] != '+') ||
        !IsDigits(exponent.substr(1), "0123456789")) {
      return std::nullopt;
    }
  }
  if (whole.empty()) {
    // .5 form: a digit must follow the dot, and no sign is allowed before it.
    if (negative || s[0] == '+' || fraction.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(fraction[0]))) {
      return std::nullopt;
    }
  } else if (!absl::ascii_isdigit(static_cast<unsigned char>(whole[0])) || !IsDigits(whole, "0123456789_")) {
    return std::nullopt;
  }
  if (!fraction.empty() && !IsDigits(fraction, "0123456789_")) return std::nullopt;
  double value = 0;
  if (!absl::SimpleAtod(WithoutUnderscores(s), &value)) return std::nullopt;
  return Json(value);
}

std::optional<Json> ResolveBool(std::string_view s) {
  for (const char* t : {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}) {
    if (s == t) return Json(true);
  }
  for (const char* f : {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}) {
    if (s == f) return Json(false);
  }
  return std::nullopt;
}

bool IsNull(std::string_view s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

// A plain scalar typed as PyYAML's resolver would.
Json ResolvePlain(std::string_view s) {
  if (IsNull(s)) return Json(nullptr);
  if (auto b = ResolveBool(s)) return *b;
  if (auto i = ResolveInt(s)) return *i;
  if (auto f = ResolveFloat(s)) return *f;
  return Json(std::string(s));
}

std::string_view TagOf(const yaml_char_t* tag) {
  return tag == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(tag));
}

class YamlToJson {
 public:
  explicit YamlToJson(std::string path) : path_(std::move(path)) {}

  absl::StatusOr<Json> Run(std::string_view text) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return absl::ResourceExhaustedError(Where("cannot start the YAML parser"));
    std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> guard(&parser, yaml_parser_delete);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()), text.size());
    int documents = 0;
    while (true) {
      yaml_event_t event;
      if (!yaml_parser_parse(&parser, &event)) {
        return absl::InvalidArgumentError(absl::StrCat(
            path_, ":", parser.problem_mark.line + 1, ":", parser.problem_mark.column + 1, ": invalid YAML: ",
            parser.problem != nullptr ? parser.problem : "syntax error",
            parser.context != nullptr ? absl::StrCat(" (", parser.context, ")") : ""));
      }
      std::unique_ptr<yaml_event_t, void (*)(yaml_event_t*)> event_guard(&event, yaml_event_delete);
      const size_t line = event.start_mark.line + 1;
      switch (event.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
          break;
        case YAML_DOCUMENT_START_EVENT:
          if (++documents > 1) return Invalid(line, "more than one document in the file");
          break;
        case YAML_STREAM_END_EVENT:
          if (documents == 0) return Json(nullptr);
          return std::move(root_);
        case YAML_ALIAS_EVENT:
          return Invalid(line, "aliases (*name) are not supported");
        case YAML_SCALAR_EVENT: {
          const std::string_view value(reinterpret_cast<const char*>(event.data.scalar.value), event.data.scalar.length);
          VQD_ASSIGN_OR_RETURN(Json scalar, Scalar(value, TagOf(event.data.scalar.tag),
                                                   event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE, line));
          VQD_RETURN_IF_ERROR(Add(std::move(scalar), line));
          break;
        }
        case YAML_SEQUENCE_START_EVENT: {
          const std::string_view tag = TagOf(event.data.sequence_start.tag);
          if (!tag.empty() && tag != absl::StrCat(kTagPrefix, "seq") && tag != absl::StrCat(kTagPrefix, "python/tuple")) {
            return Invalid(line, absl::StrCat("unsupported tag ", std::string(tag.substr(0, 64)), " on a sequence"));
          }
          VQD_RETURN_IF_ERROR(Open(Json::array(), line));
          break;
        }
        case YAML_MAPPING_START_EVENT: {
          const std::string_view tag = TagOf(event.data.mapping_start.tag);
          if (!tag.empty() && tag != absl::StrCat(kTagPrefix, "map")) {
            return Invalid(line, absl::StrCat("unsupported tag ", std::string(tag.substr(0, 64)), " on a mapping"));
          }
          VQD_RETURN_IF_ERROR(Open(Json::object(), line));
          break;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
          Frame frame = std::move(stack_.back());
          stack_.pop_back();
          VQD_RETURN_IF_ERROR(Add(std::move(frame.value), line));
          break;
        }
        case YAML_NO_EVENT:
          return Invalid(line, "unexpected end of input");
      }
    }
  }

 private:
  struct Frame {
    Json value;                      // an array or an object being filled
    std::optional<std::string> key;  // objects: the key waiting for its value
  };

  std::string Where(std::string_view what) const { return absl::StrCat(path_, ": ", std::string(what)); }
  absl::Status Invalid(size_t line, std::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(path_, ":", line, ": ", std::string(what)));
  }

  absl::StatusOr<Json> Scalar(std::string_view value, std::string_view tag, bool plain, size_t line) const {
    if (tag.empty() || tag == "!") return plain ? ResolvePlain(value) : Json(std::string(value));
    if (tag == absl::StrCat(kTagPrefix, "str")) return Json(std::string(value));
    std::optional<Json> typed;
    if (tag == absl::StrCat(kTagPrefix, "int")) typed = ResolveInt(value);
    if (tag == absl::StrCat(kTagPrefix, "float")) typed = ResolveFloat(value);
    if (tag == absl::StrCat(kTagPrefix, "bool")) typed = ResolveBool(value);
    if (tag == absl::StrCat(kTagPrefix, "null") && IsNull(value)) typed = Json(nullptr);
    if (!typed) {
      return Invalid(line, absl::StrCat("unsupported tag or value: ", std::string(tag.substr(0, 64)), " \"", std::string(value.substr(0, 64)), "\""));
    }
    return *typed;
  }

  absl::Status Open(Json container, size_t line) {
    if (stack_.size() >= kMaxDepth) return Invalid(line, absl::StrCat("nesting deeper than ", kMaxDepth, " levels"));
    if (stack_.empty() == false && stack_.back().value.is_object() && !stack_.back().key) {
      return Invalid(line, "mapping keys must be scalars");
    }
    stack_.push_back({std::move(container), std::nullopt});
    return absl::OkStatus();
  }

  absl::Status Add(Json value, size_t line) {
    if (++nodes_ > kMaxNodes) return Invalid(line, absl::StrCat("more than ", kMaxNodes, " values"));
    if (stack_.empty()) {
      root_ = std::move(value);
      return absl::OkStatus();
    }
    Frame& top = stack_.back();
    if (top.value.is_array()) {
      top.value.push_back(std::move(value));
    } else if (!top.key) {
      if (value.is_structured()) return Invalid(line, "mapping keys must be scalars");
      top.key = value.is_string() ? value.get<std::string>() : value.dump();
    } else {
      top.value[*top.key] = std::move(value);  // a repeated key keeps its last value, as PyYAML does
      top.key.reset();
    }
    return absl::OkStatus();
  }

  std::string path_;
  std::vector<Frame> stack_;
  Json root_;
  size_t nodes_ = 0;
};

}  // namespace

absl::StatusOr<JsonConfig> ParseYamlConfig(std::string_view text, std::string path_for_errors) {
  VQD_ASSIGN_OR_RETURN(Json json, YamlToJson(path_for_errors).Run(text));
  if (!json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_for_errors, ": the top level must be a mapping, got ", json.type_name()));
  }
  return JsonConfig::FromJson(std::move(json), std::move(path_for_errors));
}

absl::StatusOr<JsonConfig> LoadYamlConfig(const std::string& path) {
  VQD_ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxYamlFileBytes));
  return ParseYamlConfig(text, path);
}

}  // namespace vqd::io
