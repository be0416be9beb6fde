#include "io/weights_file.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "io/file_util.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace vqd::io {
namespace {

TEST(WeightsFile, CandidatesFollowDiffusersOrder) {
  EXPECT_EQ(WeightsFileCandidates({"diffusion_pytorch_model"}, ""),
            (std::vector<std::string>{"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"}));
  EXPECT_EQ(WeightsFileCandidates({"model", "pytorch_model"}, "fp16"),
            (std::vector<std::string>{"model.fp16.safetensors", "pytorch_model.fp16.safetensors", "model.fp16.bin",
                                      "pytorch_model.fp16.bin", "model.safetensors", "pytorch_model.safetensors",
                                      "model.bin", "pytorch_model.bin"}));
}

TEST(WeightsFile, FindsTheFirstExistingCandidate) {
  const std::string dir = testing_util::MakeTempDir();
  const std::vector<std::string> candidates = WeightsFileCandidates({"diffusion_pytorch_model"}, "fp16");
  EXPECT_ERROR(FindFirstExisting(dir, candidates), absl::StatusCode::kNotFound,
               "looked for diffusion_pytorch_model.fp16.safetensors, diffusion_pytorch_model.fp16.bin, "
               "diffusion_pytorch_model.safetensors, diffusion_pytorch_model.bin");
  ASSERT_TRUE(WriteFile(dir + "/diffusion_pytorch_model.bin", "").ok());
  EXPECT_EQ(*FindFirstExisting(dir, candidates), dir + "/diffusion_pytorch_model.bin");
  ASSERT_TRUE(WriteFile(dir + "/diffusion_pytorch_model.safetensors", "").ok());
  EXPECT_EQ(*FindFirstExisting(dir, candidates), dir + "/diffusion_pytorch_model.safetensors");
  ASSERT_TRUE(WriteFile(dir + "/diffusion_pytorch_model.fp16.bin", "").ok());
  EXPECT_EQ(*FindWeightsFile(dir, {"diffusion_pytorch_model"}, "fp16"), dir + "/diffusion_pytorch_model.fp16.bin");
  EXPECT_EQ(*FindWeightsFile(dir, {"diffusion_pytorch_model"}), dir + "/diffusion_pytorch_model.safetensors");
  // A folder with a candidate's name is not a weights file.
  ASSERT_EQ(::mkdir((dir + "/x.safetensors").c_str(), 0755), 0);
  EXPECT_EQ(*FindFirstExisting(dir, {"x.safetensors", "diffusion_pytorch_model.bin"}),
            dir + "/diffusion_pytorch_model.bin");
}

TEST(WeightsFile, ReadDispatchesOnExtension) {
  const std::string dir = testing_util::MakeTempDir();
  ASSERT_TRUE(WriteSafetensors(dir + "/w.safetensors", {{"a", torch::ones({2})}}).ok());
  absl::StatusOr<TensorMap> tensors = ReadWeightsFile(dir + "/w.safetensors");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  EXPECT_TRUE(torch::equal(tensors->at("a"), torch::ones({2})));
  // A safetensors file named .bin goes to the torch.save reader, which says it is not a zip.
  ASSERT_TRUE(WriteSafetensors(dir + "/w.bin", {{"a", torch::ones({2})}}).ok());
  EXPECT_ERROR(ReadWeightsFile(dir + "/w.bin"), absl::StatusCode::kDataLoss,
               "w.bin: cannot read torch.save checkpoint");
  EXPECT_ERROR(ReadWeightsFile(dir + "/w.ckpt"), absl::StatusCode::kInvalidArgument,
               "w.ckpt: unknown weights file type");
}

TEST(WeightsFile, FindsParityVariants) {
  VQD_SKIP_WITHOUT_PARITY(parity);
  const std::string fp16 = parity + "/tiny/model-fp16";
  absl::StatusOr<std::string> path = FindWeightsFile(fp16 + "/text_encoder", {"model", "pytorch_model"}, "fp16");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, fp16 + "/text_encoder/model.fp16.safetensors");
  absl::StatusOr<TensorMap> tensors = ReadWeightsFile(*path);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  for (const auto& [name, tensor] : *tensors) {
    EXPECT_TRUE(tensor.scalar_type() == torch::kFloat16 || !tensor.is_floating_point()) << name;
  }
  path = FindWeightsFile(parity + "/tiny/model-bin/text_encoder", {"model", "pytorch_model"}, "fp16");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_TRUE(absl::EndsWith(*path, "/text_encoder/pytorch_model.bin")) << *path;
}

}  // namespace
}  // namespace vqd::io
