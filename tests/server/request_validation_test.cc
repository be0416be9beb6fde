// Defaults and checks of Generate requests, including what gRPC cannot deliver (bad UTF-8).
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "io/png.h"
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

pipeline::PipelineInfo Ithq256() {
  pipeline::PipelineInfo info = Ithq();
  info.image_height = info.image_width = 256;
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

TEST(RequestValidationTest, TimeStrideSetsTheStepsItVisits) {
  vqdiffusion::v1::GenerateRequest r;
  r.set_time_stride(4);
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->time_stride, 4);
  EXPECT_EQ(p->steps, 26);  // 99, 95, ..., 3 and 0
  r.set_steps(26);
  EXPECT_TRUE(ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64).ok());
  r.set_time_stride(1);
  r.set_steps(7);
  p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->steps, 7);
}

TEST(RequestValidationTest, RejectsABadStrideNamingTheField) {
  vqdiffusion::v1::GenerateRequest r;
  for (uint32_t stride : {0u, 101u}) {
    r.set_time_stride(stride);
    auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find("time_stride"), std::string::npos) << p.status();
  }
  r.set_time_stride(4);
  r.set_steps(25);  // the stride visits 26
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("steps"), std::string::npos) << p.status();
  EXPECT_NE(p.status().message().find("26"), std::string::npos) << p.status();
}

TEST(RequestValidationTest, PriorRuleAndWeight) {
  vqdiffusion::v1::GenerateRequest r;
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->prior_rule, diffusion::PriorRule::kNone);
  r.set_prior_rule(vqdiffusion::v1::PRIOR_RULE_PURITY);
  r.set_prior_weight(1.5f);
  p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->prior_rule, diffusion::PriorRule::kPurity);
  EXPECT_EQ(p->prior_weight, 1.5f);
  // A weight only sharpens purity; negative or unknown values name their field.
  for (auto [rule, weight, field] : {std::tuple{vqdiffusion::v1::PRIOR_RULE_UNIFORM, 1.0f, "prior_weight"},
                                     std::tuple{vqdiffusion::v1::PRIOR_RULE_UNSPECIFIED, 0.5f, "prior_weight"},
                                     std::tuple{vqdiffusion::v1::PRIOR_RULE_PURITY, -1.0f, "prior_weight"},
                                     std::tuple{static_cast<vqdiffusion::v1::PriorRule>(9), 0.0f, "prior_rule"}}) {
    r.set_prior_rule(rule);
    r.set_prior_weight(weight);
    p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq(), 64);
    ASSERT_FALSE(p.ok()) << rule << " " << weight;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(p.status().message().rfind(std::string(field) + ":", 0), 0u) << p.status();
  }
}

std::string Png(int width, int height, uint8_t value) {
  std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 3, value);
  return *io::EncodePng(pixels.data(), width, height, 3);
}

void ExpectInvalidField(const vqdiffusion::v1::GenerateRequest& r, const std::string& field, const std::string& words) {
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq256(), 64);
  ASSERT_FALSE(p.ok()) << field;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message().rfind(field + ":", 0), 0u) << p.status();
  EXPECT_NE(p.status().message().find(words), std::string::npos) << p.status();
}

TEST(RequestValidationTest, EditFieldsAreDecodedAndTheStepsFollowTheStrength) {
  vqdiffusion::v1::GenerateRequest r;
  r.set_init_image(Png(256, 256, 90));
  r.set_strength(0.3f);
  auto p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq256(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->edit);
  EXPECT_EQ(p->steps, 30);
  EXPECT_EQ(p->edit->image.sizes(), (std::vector<int64_t>{256, 256, 3}));
  EXPECT_NEAR(p->edit->image[0][0][0].item<float>(), 90.0f / 255, 1e-6);
  EXPECT_FALSE(p->edit->regenerate.defined());
  r.set_mask(Png(256, 256, 255));
  r.set_time_stride(4);  // visits 29, 25, ..., 1, 0
  p = ValidateGenerateRequest(r, ServiceLimits{}, Ithq256(), 64);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->steps, 9);
  EXPECT_EQ(p->edit->regenerate.numel(), 1024);
  EXPECT_TRUE(p->edit->regenerate.all().item<bool>());
}

TEST(RequestValidationTest, BadEditInputsNameTheirField) {
  vqdiffusion::v1::GenerateRequest r;
  r.set_mask(Png(256, 256, 0));
  ExpectInvalidField(r, "mask", "needs init_image");
  r.clear_mask();
  r.set_strength(0.5f);
  ExpectInvalidField(r, "strength", "only with init_image");
  r.set_init_image(Png(256, 256, 10));
  r.set_strength(0.0f);
  ExpectInvalidField(r, "strength", "(0, 1]");
  r.set_strength(0.004f);
  ExpectInvalidField(r, "strength", "starts at no timestep");
  r.set_strength(0.5f);
  r.set_steps(20);
  ExpectInvalidField(r, "steps", "set it to 50");
  r.clear_steps();
  r.set_init_image(Png(128, 256, 10));
  ExpectInvalidField(r, "init_image", "128x256");
  r.set_init_image("\x89PNG but not really");
  ExpectInvalidField(r, "init_image", "not a PNG that decodes");
  r.set_init_image(Png(256, 256, 10));
  r.set_mask(Png(256, 256, 128));
  ExpectInvalidField(r, "mask", "black (keep) and white (regenerate) only");
  r.set_mask(Png(64, 64, 255));
  ExpectInvalidField(r, "mask", "64x64");
  r.set_mask("garbage");
  ExpectInvalidField(r, "mask", "not a PNG that decodes");
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
