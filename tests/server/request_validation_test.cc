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

}  // namespace
}  // namespace vqd::server
