#include "io/yaml_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "io/file_util.h"
#include "test_util.h"

namespace vqd::io {
namespace {

using testing_util::MakeTempDir;

// The shapes of the official files: yaml.dump output with !!python/tuple, and hand-written
// training configs with flow collections, quotes, comments and irregular indentation.
constexpr char kOfficialStyle[] = R"(model:
  params:
    content_emb_config:
      params:
        spatial_size: !!python/tuple
        - 32
        - 32
        embed_dim: 1024
    learnable_cf: True
  base_learning_rate: 4.5e-06
# change from o4
solver:
    content_info: {key: image}
    token_shape: [32, 32]
    config_path: 'OUTPUT/pretrained_model/taming_dvae/taming_f8_8192_openimages.yaml'
    alpha_init_type: "alpha1"       # init_type = fix or cos or linear
    params:
       context_length: 77     ############# 77 for clip
       tokenizer_config:
        target: image_synthesis.modeling.modules.clip.simple_tokenizer.SimpleTokenizer
        params:
          end_idx: 49152
    empty:
    tilde: ~
)";

TEST(YamlConfig, ReadsOfficialStyles) {
  absl::StatusOr<JsonConfig> config = ParseYamlConfig(kOfficialStyle, "config.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const nlohmann::json& j = config->json();
  EXPECT_EQ(j["model"]["params"]["content_emb_config"]["params"]["spatial_size"], nlohmann::json({32, 32}));
  EXPECT_EQ(j["model"]["params"]["content_emb_config"]["params"]["embed_dim"], 1024);
  EXPECT_EQ(j["model"]["params"]["learnable_cf"], true);
  EXPECT_DOUBLE_EQ(j["model"]["base_learning_rate"].get<double>(), 4.5e-06);
  EXPECT_EQ(j["solver"]["content_info"], nlohmann::json({{"key", "image"}}));
  EXPECT_EQ(j["solver"]["token_shape"], nlohmann::json({32, 32}));
  EXPECT_EQ(j["solver"]["config_path"], "OUTPUT/pretrained_model/taming_dvae/taming_f8_8192_openimages.yaml");
  EXPECT_EQ(j["solver"]["alpha_init_type"], "alpha1");
  EXPECT_EQ(j["solver"]["params"]["context_length"], 77);
  EXPECT_EQ(j["solver"]["params"]["tokenizer_config"]["params"]["end_idx"], 49152);
  EXPECT_TRUE(j["solver"]["empty"].is_null());
  EXPECT_TRUE(j["solver"]["tilde"].is_null());
  // Typed access as for the JSON configs.
  absl::StatusOr<JsonConfig> model = config->Object("model");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(*model->Object("params")->Bool("learnable_cf"), true);
}

TEST(YamlConfig, TypesScalarsAsPyYamlDoes) {
  absl::StatusOr<JsonConfig> c = ParseYamlConfig(R"(
a: 1e-6
b: 1.0e-08
c: 1.
d: .5
e: -.5
f: 0x1F
g: 017
h: 1_000
i: yes
j: Off
k: "True"
l: '12'
m: .inf
n: -.inf
o: .nan
p: 0
q: -42
r: 99999999999999999999999
s: !!str 5
t: !!float 2.5
u: 3.25e+2
)", "scalars.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const nlohmann::json& j = c->json();
  EXPECT_EQ(j["a"], "1e-6");  // no dot: a string to PyYAML
  EXPECT_DOUBLE_EQ(j["b"].get<double>(), 1e-8);
  EXPECT_DOUBLE_EQ(j["c"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["d"].get<double>(), 0.5);
  EXPECT_EQ(j["e"], "-.5");
  EXPECT_EQ(j["f"], 31);
  EXPECT_EQ(j["g"], 15);
  EXPECT_EQ(j["h"], 1000);
  EXPECT_EQ(j["i"], true);
  EXPECT_EQ(j["j"], false);
  EXPECT_EQ(j["k"], "True");
  EXPECT_EQ(j["l"], "12");
  EXPECT_TRUE(std::isinf(j["m"].get<double>()) && j["m"].get<double>() > 0);
  EXPECT_TRUE(std::isinf(j["n"].get<double>()) && j["n"].get<double>() < 0);
  EXPECT_TRUE(std::isnan(j["o"].get<double>()));
  EXPECT_EQ(j["p"], 0);
  EXPECT_EQ(j["q"], -42);
  EXPECT_EQ(j["r"], "99999999999999999999999");
  EXPECT_EQ(j["s"], "5");
  EXPECT_DOUBLE_EQ(j["t"].get<double>(), 2.5);
  EXPECT_DOUBLE_EQ(j["u"].get<double>(), 325.0);
}

TEST(YamlConfig, RefusesWhatItDoesNotSupport) {
  EXPECT_ERROR(ParseYamlConfig("a: &x [1, 2]\nb: *x\n", "alias.yaml"), absl::StatusCode::kInvalidArgument,
               "alias.yaml:2: aliases (*name) are not supported");
  EXPECT_ERROR(ParseYamlConfig("a: !!python/object:os.system [ls]\n", "tag.yaml"), absl::StatusCode::kInvalidArgument,
               "unsupported tag tag:yaml.org,2002:python/object:os.system");
  EXPECT_ERROR(ParseYamlConfig("a: 1\n---\nb: 2\n", "two.yaml"), absl::StatusCode::kInvalidArgument,
               "more than one document");
  EXPECT_ERROR(ParseYamlConfig("- 1\n- 2\n", "list.yaml"), absl::StatusCode::kInvalidArgument,
               "the top level must be a mapping");
  EXPECT_ERROR(ParseYamlConfig("a: [1, 2\n", "broken.yaml"), absl::StatusCode::kInvalidArgument,
               "broken.yaml:2:1: invalid YAML");
  EXPECT_ERROR(ParseYamlConfig("? [1, 2]\n: x\n", "key.yaml"), absl::StatusCode::kInvalidArgument,
               "mapping keys must be scalars");
  EXPECT_ERROR(ParseYamlConfig(std::string(200, '[') + std::string(200, ']'), "deep.yaml"),
               absl::StatusCode::kInvalidArgument, "nesting deeper than 64");
  EXPECT_ERROR(ParseYamlConfig("a: !!int x\n", "int.yaml"), absl::StatusCode::kInvalidArgument,
               "unsupported tag or value");
  EXPECT_ERROR(ParseYamlConfig("a: \"\xff\"\n", "utf8.yaml"), absl::StatusCode::kInvalidArgument, "utf8.yaml");
}

TEST(YamlConfig, ByteFlipsNeverCrash) {
  const std::string good = kOfficialStyle;
  for (size_t i = 0; i < good.size(); i += 3) {
    for (char c : {'\0', '[', '{', '&', '*', '!', ':', '\n', '\'', '"', '\xc3'}) {
      std::string bad = good;
      bad[i] = c;
      (void)ParseYamlConfig(bad, "flipped.yaml");  // any status; reaching the end is the test
    }
  }
}

TEST(YamlConfig, LoadsFilesAndRefusesHugeOnes) {
  const std::string dir = MakeTempDir();
  ASSERT_TRUE(WriteFile(dir + "/c.yaml", "model:\n  target: x\n").ok());
  absl::StatusOr<JsonConfig> c = LoadYamlConfig(dir + "/c.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->path(), dir + "/c.yaml");
  EXPECT_ERROR(LoadYamlConfig(dir + "/missing.yaml"), absl::StatusCode::kNotFound, "missing.yaml");
  ASSERT_TRUE(WriteFile(dir + "/big.yaml", std::string(kMaxYamlFileBytes + 1, '#')).ok());
  EXPECT_FALSE(LoadYamlConfig(dir + "/big.yaml").ok());
}

}  // namespace
}  // namespace vqd::io
