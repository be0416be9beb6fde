// Defaults and checks of Generate requests, including what gRPC cannot deliver (bad UTF-8).
#include <gtest/gtest.h>

#include "server/request_validation.h"

namespace vqd::server {
namespace {

pipeline::PipelineInfo Ithq() {
  pipeline::PipelineInfo info;
  info.grid_height = info.grid_width = 32;
  info.num_latent_pixels = 1024;
  info.codebook_size = 4096;
  info.num_train_timesteps = 100;
  return info;
}

TEST(RequestValidationTest, AppliesTheDocumentedDefaults) {
  vqdiffusion::v1::GenerateRequest r;
  r.set_prompt("a cat");
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->num_images, 1);
  EXPECT_EQ(p->steps, 100);
  EXPECT_EQ(p->guidance_scale, 5.0f);
  EXPECT_EQ(p->truncation_rate, 1.0f);
  EXPECT_EQ(p->progress_interval, 0);
  EXPECT_EQ(p->request_id.rfind("req-", 0), 0u);
  EXPECT_LT(p->seed, uint64_t{1} << 63);
  auto other = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  EXPECT_NE(other->request_id, p->request_id);
  EXPECT_NE(other->seed, p->seed);
}

TEST(RequestValidationTest, KeepsWhatTheClientSet) {
  vqdiffusion::v1::GenerateRequest r;
  r.set_num_images(3);
  r.set_steps(7);
  r.set_guidance_scale(1.0f);
  r.set_truncation_rate(0.5f);
  r.set_seed(0);
  r.set_priority(-3);
  r.set_request_id("client-id_1");
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->num_images, 3);
  EXPECT_EQ(p->steps, 7);
  EXPECT_FALSE(p->guided());
  EXPECT_EQ(p->rows(), 3);
  EXPECT_EQ(p->seed, 0u);
  EXPECT_EQ(p->priority, -3);
  EXPECT_EQ(p->request_id, "client-id_1");
}

TEST(RequestValidationTest, RejectsInvalidUtf8AndLongIds) {
  vqdiffusion::v1::GenerateRequest r;
  for (const std::string& bad : {std::string("\xff"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
                                std::string("abc\xe2\x82")}) {
    r.set_prompt(bad);
    auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().message(), "prompt: is not valid UTF-8");
  }
  r.set_prompt("caf\xc3\xa9 \xf0\x9f\x90\xbb");  // café 🐻
  EXPECT_TRUE(ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64).ok());
  r.set_request_id(std::string(129, 'x'));
  EXPECT_FALSE(ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64).ok());
}

pipeline::PipelineInfo OfficialImagenet() {
  pipeline::PipelineInfo info;
  info.model_name = "imagenet_learnable";
  info.grid_height = info.grid_width = 16;
  info.num_latent_pixels = 256;
  info.codebook_size = 974;
  info.num_train_timesteps = 100;
  info.conditioning = pipeline::Conditioning::kClassLabel;
  info.num_classes = 1000;
  info.sampler = pipeline::Sampler::kOfficial;
  info.default_guidance_scale = 1.5f;
  info.default_truncation_rate = 0.94f;
  return info;
}

TEST(RequestValidationTest, ClassModelsTakeAClassLabelAndTheirDefaults) {
  vqdiffusion::v1::GenerateRequest r;
  r.set_class_label(407);
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, OfficialImagenet(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->class_label, 407);
  EXPECT_EQ(p->guidance_scale, 1.5f);  // the checkpoint's official defaults
  EXPECT_EQ(p->truncation_rate, 0.94f);
  EXPECT_TRUE(p->guided());
  EXPECT_EQ(p->rows(), 2);

  auto message = [](const vqdiffusion::v1::GenerateRequest& request, const pipeline::PipelineInfo& info) {
    auto v = ValidateGenerateRequest(request, ServiceLimits{}, info, 64);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
    return std::string(v.status().message());
  };
  vqdiffusion::v1::GenerateRequest missing;
  EXPECT_EQ(message(missing, OfficialImagenet()),
            "class_label: required by the class-conditional model imagenet_learnable, in [0, 1000)");
  vqdiffusion::v1::GenerateRequest out_of_range;
  out_of_range.set_class_label(1000);
  EXPECT_EQ(message(out_of_range, OfficialImagenet()), "class_label: must be in [0, 1000), got 1000");
  out_of_range.set_class_label(-1);
  EXPECT_EQ(message(out_of_range, OfficialImagenet()), "class_label: must be in [0, 1000), got -1");
  vqdiffusion::v1::GenerateRequest prompt;
  prompt.set_prompt("a goldfish");
  prompt.set_class_label(1);
  EXPECT_EQ(message(prompt, OfficialImagenet()).rfind("prompt: model imagenet_learnable is class-conditional", 0), 0u);
  vqdiffusion::v1::GenerateRequest label_for_text;
  label_for_text.set_prompt("a cat");
  label_for_text.set_class_label(3);
  EXPECT_EQ(message(label_for_text, Ithq()).rfind("class_label: model", 0), 0u);
  // The official sampler would guide below 1; such scales are refused for these models only.
  r.set_guidance_scale(0.5f);
  EXPECT_EQ(message(r, OfficialImagenet()).rfind("guidance_scale: must be >= 1", 0), 0u);
  vqdiffusion::v1::GenerateRequest text;
  text.set_guidance_scale(0.5f);
  EXPECT_TRUE(ValidateGenerateRequest(text, ServiceLimits{}, Ithq(), 64).ok());
}

}  // namespace
}  // namespace vqd::server
