// The service serving models converted from the official checkpoints (../shared/parity/official),
// over gRPC: ModelInfo reports the family and defaults, class labels are validated, and seeded
// requests that share batches give the grids the official script gave for the same seeds.
#include <gtest/gtest.h>

#include "common/official_models.h"
#include "server/server_app.h"
#include "server_test_util.h"
#include "test_server_config.h"

namespace vqd::server {
namespace {

namespace v1 = vqdiffusion::v1;
using testing::ConvertedOfficialModel;
using testing::OfficialGolden;
using testing::OfficialModel;

std::unique_ptr<ServerApp> StartOfficialServer(OfficialModel model) {
  ServerConfig config = LoopbackTestConfig();
  config.model_dir = ConvertedOfficialModel(model);
  config.max_batch_rows = 16;
  auto app = ServerApp::Start(config);
  EXPECT_TRUE(app.ok()) << app.status();
  return app.ok() ? std::move(*app) : nullptr;
}

// The golden final grids of a sample case as the Image events carry them.
std::vector<std::vector<uint32_t>> GoldenFinalGrids(const std::string& family, int sample_case) {
  const torch::Tensor grids = OfficialGolden(family, "sample.case" + std::to_string(sample_case) + ".grids")[99];
  std::vector<std::vector<uint32_t>> out;
  for (int64_t i = 0; i < grids.size(0); ++i) {
    torch::Tensor row = grids[i].to(torch::kInt64).contiguous();
    out.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  }
  return out;
}

class OfficialModelServerTest : public ::testing::Test {
 protected:
  void SetUp() override { VQD_REQUIRE_OFFICIAL_PARITY(); }
};

TEST_F(OfficialModelServerTest, ClassModelInfoLabelsAndGoldenGridsUnderBatching) {
  auto app = StartOfficialServer(OfficialModel::kClass);
  ASSERT_TRUE(app);
  auto stub = testing::MakeStub(app->grpc_port());
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.conditioning(), "class_label");
  EXPECT_EQ(info.num_classes(), 11u);
  EXPECT_EQ(info.sampler(), "official");
  EXPECT_FLOAT_EQ(info.default_guidance_scale(), 1.0f);
  EXPECT_FLOAT_EQ(info.default_truncation_rate(), 0.86f);
  EXPECT_EQ(info.max_prompt_tokens(), 0u);
  EXPECT_EQ(info.image_height(), 64u);

  // Both official ImageNet runs at once (so they share steps), the first leaving guidance and
  // truncation to the model's defaults, which are exactly that run's settings.
  v1::GenerateRequest defaults;
  defaults.set_class_label(3);
  defaults.set_num_images(2);
  defaults.set_seed(1212);
  v1::GenerateRequest guided;
  guided.set_class_label(7);
  guided.set_num_images(2);
  guided.set_guidance_scale(1.5f);
  guided.set_truncation_rate(0.94f);
  guided.set_seed(1213);
  auto results = testing::RunConcurrently(*stub, {defaults, guided, defaults});
  for (size_t i = 0; i < results.size(); ++i) {
    ASSERT_TRUE(results[i].status.ok()) << i << ": " << results[i].status.error_message();
    EXPECT_EQ(results[i].final_grids(), GoldenFinalGrids("imagenet", i == 1 ? 1 : 0)) << "request " << i;
  }

  auto invalid = [&](const v1::GenerateRequest& r) {
    testing::StreamResult result = testing::Generate(*stub, r);
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    return result.status.error_message();
  };
  v1::GenerateRequest prompt;
  prompt.set_prompt("a goldfish");
  prompt.set_class_label(1);
  EXPECT_EQ(invalid(prompt).rfind("prompt: ", 0), 0u);
  EXPECT_EQ(invalid(v1::GenerateRequest()).rfind("class_label: required", 0), 0u);
  v1::GenerateRequest beyond;
  beyond.set_class_label(11);
  EXPECT_EQ(invalid(beyond), "class_label: must be in [0, 11), got 11");
}

TEST_F(OfficialModelServerTest, TextModelReproducesTheLearnedNullRunAndRefusesLabels) {
  auto app = StartOfficialServer(OfficialModel::kText);
  ASSERT_TRUE(app);
  auto stub = testing::MakeStub(app->grpc_port());
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.conditioning(), "text");
  EXPECT_EQ(info.num_classes(), 0u);
  EXPECT_FLOAT_EQ(info.default_guidance_scale(), 3.0f);
  EXPECT_FLOAT_EQ(info.default_truncation_rate(), 1.0f);
  // Sample case 2: "a red bus", guidance 3 with the learned null, truncation 1.0: the defaults.
  v1::GenerateRequest r;
  r.set_prompt("a red bus");
  r.set_num_images(2);
  r.set_seed(1204);
  testing::StreamResult result = testing::Generate(*stub, r);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.final_grids(), GoldenFinalGrids("text", 2));
  r.set_class_label(3);
  result = testing::Generate(*stub, r);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(result.status.error_message().rfind("class_label: model", 0), 0u);
}

}  // namespace
}  // namespace vqd::server
