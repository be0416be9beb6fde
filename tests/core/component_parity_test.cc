// Each model component against the tensors diffusers computed from the same tiny model
// (../shared/parity/tiny/goldens.safetensors), on CPU in float32 within 1e-4.
#include <gtest/gtest.h>

#include "common/parity_data.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd {
namespace {

using testing::AllClose;
using testing::Golden;

class ComponentParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VQD_REQUIRE_PARITY();
    if (!pipeline_) {
      auto loaded = pipeline::VqDiffusionPipeline::Load(testing::TinyPath("model"), {});
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      pipeline_ = std::move(*loaded);
    }
  }
  static std::unique_ptr<pipeline::VqDiffusionPipeline> pipeline_;
};
std::unique_ptr<pipeline::VqDiffusionPipeline> ComponentParityTest::pipeline_;

TEST_F(ComponentParityTest, TextEncoderLastHiddenState) {
  torch::InferenceMode guard;
  torch::Tensor hidden = pipeline_->text_encoder()(Golden("text.input_ids"));
  EXPECT_TRUE(AllClose("text.last_hidden_state", hidden, Golden("text.last_hidden_state")));
}

TEST_F(ComponentParityTest, PromptEmbeddingsWithGuidance) {
  // _encode_prompt(prompt 0, num_images_per_prompt=2, guidance): [learned null x 2, prompt x 2].
  const torch::Tensor& expected = Golden("text.prompt_embeds_cfg");
  auto encoding = pipeline_->EncodePrompt("teddy bear playing in the pool");
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  torch::Tensor actual = torch::cat({pipeline_->null_embeddings().expand({2, -1, -1}),
                                     (*encoding)->embeddings.expand({2, -1, -1})}, 0);
  EXPECT_TRUE(AllClose("text.prompt_embeds_cfg", actual, expected));
}

TEST_F(ComponentParityTest, PromptEncodingMatchesTokenizerAndEncoder) {
  auto encoding = pipeline_->EncodePrompt("teddy bear playing in the pool");
  ASSERT_TRUE(encoding.ok()) << encoding.status();
  const torch::Tensor ids = Golden("text.input_ids")[0];
  ASSERT_EQ((*encoding)->input_ids.size(), 77u);
  EXPECT_TRUE(torch::equal(torch::tensor((*encoding)->input_ids, torch::kInt64), ids));
}

TEST_F(ComponentParityTest, TransformerLogProbs) {
  torch::InferenceMode guard;
  const torch::Tensor& tokens = Golden("transformer.tokens");
  const torch::Tensor& context = Golden("transformer.encoder_hidden_states");
  for (int64_t t : {0, 37, 99}) {
    torch::Tensor timesteps = torch::full({tokens.size(0)}, t, torch::kInt64);
    torch::Tensor log_p = pipeline_->transformer()->ForwardFromHiddenStates(tokens, timesteps, context);
    const std::string name = "transformer.log_probs.t" + std::to_string(t);
    EXPECT_TRUE(AllClose(name, log_p, Golden(name)));
  }
}

TEST_F(ComponentParityTest, TransformerMixedTimestepsEqualSeparateCalls) {
  // The batched form (one timestep per sample) must compute what per-timestep calls compute.
  torch::InferenceMode guard;
  const torch::Tensor& tokens = Golden("transformer.tokens");
  const torch::Tensor& context = Golden("transformer.encoder_hidden_states");
  torch::Tensor mixed = pipeline_->transformer()->ForwardFromHiddenStates(tokens, torch::tensor({0, 99}, torch::kInt64), context);
  EXPECT_TRUE(AllClose("row 0 at t=0", mixed[0], Golden("transformer.log_probs.t0")[0]));
  EXPECT_TRUE(AllClose("row 1 at t=99", mixed[1], Golden("transformer.log_probs.t99")[1]));
}

TEST_F(ComponentParityTest, VqvaeCodebookLookupAndDecode) {
  torch::InferenceMode guard;
  const torch::Tensor& indices = Golden("vqvae.indices");
  torch::Tensor z = pipeline_->vqvae()->Lookup(indices, 8, 8);
  EXPECT_TRUE(AllClose("vqvae.codebook_entries", z, Golden("vqvae.codebook_entries")));
  EXPECT_TRUE(AllClose("vqvae.decoded", pipeline_->vqvae()->Decode(z), Golden("vqvae.decoded")));
}

TEST_F(ComponentParityTest, VqvaeEncodeAndQuantize) {
  torch::InferenceMode guard;
  torch::Tensor latents = pipeline_->vqvae()->EncodeLatents(Golden("vqvae.encode_input"));
  EXPECT_TRUE(AllClose("vqvae.encoded_latents", latents, Golden("vqvae.encoded_latents")));
  torch::Tensor indices = pipeline_->vqvae()->quantize->Encode(latents);
  EXPECT_TRUE(torch::equal(indices, Golden("vqvae.encoded_indices")));
}

TEST_F(ComponentParityTest, EncodeImageGivesDiffusersTokens) {
  // The public path (images NHWC in [0, 1]) on diffusers' encoder input: the same tokens.
  const torch::Tensor images = (Golden("vqvae.encode_input") / 2 + 0.5).permute({0, 2, 3, 1}).contiguous();
  auto tokens = pipeline_->EncodeImage(images);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  const torch::Tensor& expected = Golden("vqvae.encoded_indices");
  ASSERT_EQ(tokens->sizes(), expected.sizes());
  EXPECT_EQ(tokens->ne(expected).sum().item<int64_t>(), 0) << *tokens << " vs diffusers' " << expected;
}

}  // namespace
}  // namespace vqd
