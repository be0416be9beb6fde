#include "io/json_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "io/file_util.h"
#include "test_util.h"

namespace vqd::io {
namespace {

constexpr char kConfig[] = R"({
  "_class_name": "Transformer2DModel",
  "num_layers": 2,
  "big": 18446744073709551615,
  "dropout": 0.1,
  "scale": 3,
  "use_linear": true,
  "act": "gelu",
  "dims": [4, 8, 16],
  "mixed": [1, 2.5],
  "names": ["a", "b"],
  "nothing": null,
  "nested": {"depth": 3, "kind": 5}
})";

JsonConfig Config() {
  absl::StatusOr<JsonConfig> config = JsonConfig::Parse(kConfig, "cfg.json");
  EXPECT_TRUE(config.ok()) << config.status();
  return *config;
}

TEST(JsonConfig, TypedGetters) {
  const JsonConfig config = Config();
  EXPECT_EQ(config.path(), "cfg.json");
  EXPECT_EQ(*config.Int("num_layers"), 2);
  EXPECT_DOUBLE_EQ(*config.Float("dropout"), 0.1);
  EXPECT_DOUBLE_EQ(*config.Float("scale"), 3.0);  // Integers are valid floats.
  EXPECT_TRUE(*config.Bool("use_linear"));
  EXPECT_EQ(*config.String("act"), "gelu");
  EXPECT_EQ(*config.IntList("dims"), (std::vector<int64_t>{4, 8, 16}));
  EXPECT_EQ(*config.FloatList("mixed"), (std::vector<double>{1, 2.5}));
  EXPECT_EQ(*config.StringList("names"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(config.json()["_class_name"], "Transformer2DModel");
  EXPECT_TRUE(config.Has("nothing"));
  EXPECT_FALSE(config.Has("absent"));
  absl::StatusOr<JsonConfig> nested = config.Object("nested");
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_EQ(*nested->Int("depth"), 3);
  EXPECT_ERROR(nested->String("kind"), absl::StatusCode::kInvalidArgument,
               "cfg.json: key \"nested.kind\" must be a string, got integer");
}

TEST(JsonConfig, ErrorsNameFileKeyAndTypes) {
  const JsonConfig config = Config();
  EXPECT_ERROR(config.Int("act"), absl::StatusCode::kInvalidArgument,
               "cfg.json: key \"act\" must be an integer, got string");
  EXPECT_ERROR(config.Int("dropout"), absl::StatusCode::kInvalidArgument, "must be an integer, got float");
  EXPECT_ERROR(config.Int("big"), absl::StatusCode::kInvalidArgument, "must be a 64-bit integer");
  EXPECT_ERROR(config.Float("act"), absl::StatusCode::kInvalidArgument, "key \"act\" must be a number, got string");
  EXPECT_ERROR(config.Bool("num_layers"), absl::StatusCode::kInvalidArgument, "must be a boolean, got integer");
  EXPECT_ERROR(config.String("dims"), absl::StatusCode::kInvalidArgument, "must be a string, got array");
  EXPECT_ERROR(config.IntList("act"), absl::StatusCode::kInvalidArgument, "must be an array, got string");
  EXPECT_ERROR(config.IntList("mixed"), absl::StatusCode::kInvalidArgument,
               "key \"mixed[1]\" must be an integer, got float");
  EXPECT_ERROR(config.StringList("dims"), absl::StatusCode::kInvalidArgument, "key \"dims[0]\" must be a string");
  EXPECT_ERROR(config.Int("nothing"), absl::StatusCode::kInvalidArgument, "got null");
  EXPECT_ERROR(config.Int("absent"), absl::StatusCode::kNotFound, "cfg.json: required key \"absent\" is missing");
  EXPECT_ERROR(config.Object("dims"), absl::StatusCode::kInvalidArgument, "must be an object, got array");
}

TEST(JsonConfig, OrVariantsTreatNullAsAbsent) {
  const JsonConfig config = Config();
  EXPECT_EQ(*config.IntOr("absent", 7), 7);
  EXPECT_EQ(*config.IntOr("nothing", 7), 7);
  EXPECT_EQ(*config.IntOr("num_layers", 7), 2);
  EXPECT_DOUBLE_EQ(*config.FloatOr("absent", 0.5), 0.5);
  EXPECT_FALSE(*config.BoolOr("nothing", false));
  EXPECT_EQ(*config.StringOr("absent", "x"), "x");
  EXPECT_EQ(*config.IntListOr("absent", {1}), (std::vector<int64_t>{1}));
  EXPECT_EQ(*config.FloatListOr("absent", {1.5}), (std::vector<double>{1.5}));
  EXPECT_EQ(*config.StringListOr("nothing", {"z"}), (std::vector<std::string>{"z"}));
  // Present with the wrong type is still an error.
  EXPECT_ERROR(config.IntOr("act", 7), absl::StatusCode::kInvalidArgument,
               "key \"act\" must be an integer, got string");
  EXPECT_ERROR(config.StringOr("dims", ""), absl::StatusCode::kInvalidArgument, "must be a string");
}

TEST(JsonConfig, ParseErrors) {
  EXPECT_ERROR(JsonConfig::Parse("{\"a\": 1,}", "bad.json"), absl::StatusCode::kInvalidArgument,
               "bad.json: invalid JSON: [json.exception.parse_error");
  EXPECT_ERROR(JsonConfig::Parse("", "empty.json"), absl::StatusCode::kInvalidArgument, "empty.json: invalid JSON");
  EXPECT_ERROR(JsonConfig::Parse("[1, 2]", "list.json"), absl::StatusCode::kInvalidArgument,
               "list.json: the top level must be a JSON object, got array");
  EXPECT_ERROR(JsonConfig::Parse("{\"s\": \"\xff\"}", "utf8.json"), absl::StatusCode::kInvalidArgument, "utf8.json");
  // Deep nesting must not overflow the stack (nlohmann parses and destroys iteratively); getting
  // past this line is the test.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_TRUE(JsonConfig::Parse("{\"a\":" + deep + "}", "deep.json").ok());
}

TEST(JsonConfig, LoadsFiles) {
  const std::string dir = testing_util::MakeTempDir();
  ASSERT_TRUE(WriteFile(dir + "/config.json", kConfig).ok());
  absl::StatusOr<JsonConfig> config = JsonConfig::Load(dir + "/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->path(), dir + "/config.json");
  EXPECT_ERROR(config->Int("act"), absl::StatusCode::kInvalidArgument, dir + "/config.json: key \"act\"");

  EXPECT_ERROR(JsonConfig::Load(dir + "/missing.json"), absl::StatusCode::kNotFound, "missing.json");
  // Oversized files are refused before reading (a sparse file costs no disk).
  const std::string big = dir + "/big.json";
  ASSERT_TRUE(WriteFile(big, "{}").ok());
  ASSERT_EQ(::truncate(big.c_str(), JsonConfig::kMaxFileBytes + 1), 0);
  EXPECT_ERROR(JsonConfig::Load(big), absl::StatusCode::kInvalidArgument, "more than the limit");
}

TEST(JsonConfig, ReadsTheParityModelConfigs) {
  VQD_SKIP_WITHOUT_PARITY(parity);
  absl::StatusOr<JsonConfig> config = JsonConfig::Load(parity + "/tiny/model/transformer/config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(*config->String("_class_name"), "Transformer2DModel");
  EXPECT_GT(*config->Int("num_layers"), 0);
}

}  // namespace
}  // namespace vqd::io
