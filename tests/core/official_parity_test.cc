// Models converted from the official-layout checkpoints of ../shared/parity/official, against the
// tensors the official microsoft/VQ-Diffusion code computed from them (its README gives the
// tolerances: 1e-4 on log-probabilities, posteriors and CLIP, 1e-2 on images on the 0..255 scale,
// token grids equal), on CPU in float32.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "common/official_models.h"
#include "common/test_model.h"
#include "convert/official_converter.h"
#include "convert/official_weights.h"
#include "diffusion/gumbel_sampler.h"
#include "diffusion/official_sampling.h"
#include "diffusion/vq_schedule.h"
#include "io/file_util.h"
#include "io/torch_bin.h"
#include "text/clip_tokenizer_files.h"
#include "pipeline/generate.h"
#include "pipeline/vq_diffusion_pipeline.h"

namespace vqd {
namespace {

using testing::AllClose;
using testing::ConvertedOfficialModel;
using testing::OfficialGolden;
using testing::OfficialModel;

constexpr double kLogTol = 1e-4;

pipeline::VqDiffusionPipeline& Pipeline(OfficialModel model) {
  static std::map<OfficialModel, std::unique_ptr<pipeline::VqDiffusionPipeline>> loaded;
  auto it = loaded.find(model);
  if (it == loaded.end()) {
    auto p = pipeline::VqDiffusionPipeline::Load(ConvertedOfficialModel(model), {});
    if (!p.ok()) throw std::runtime_error(std::string(p.status().message()));
    it = loaded.emplace(model, std::move(*p)).first;
  }
  return *it->second;
}

const std::string kText = "text", kImagenet = "imagenet";

torch::Tensor TextGolden(const std::string& name) { return OfficialGolden(kText, name); }
torch::Tensor ClassGolden(const std::string& name) { return OfficialGolden(kImagenet, name); }

// A sample case of meta.json: its condition and settings.
struct SampleCase {
  std::string family;
  int index = 0;
  std::string prompt;
  std::optional<int64_t> label;
  float truncation = 1, guidance = 1;
  uint64_t seed = 0;
  bool learnable_null = false;
  OfficialModel model() const {
    if (family == kImagenet) return OfficialModel::kClass;
    return learnable_null ? OfficialModel::kText : OfficialModel::kTextZeroShot;
  }
  std::string Name(const std::string& what) const { return "sample.case" + std::to_string(index) + "." + what; }
  torch::Tensor Golden(const std::string& what) const { return OfficialGolden(family, Name(what)); }
};

std::vector<SampleCase> SampleCases() {
  std::vector<SampleCase> cases;
  for (const std::string& family : {kText, kImagenet}) {
    for (const auto& [key, c] : testing::OfficialMeta(family)["sample_cases"].items()) {
      SampleCase s;
      s.family = family;
      s.index = std::stoi(key.substr(4));
      if (c.contains("prompt")) s.prompt = c["prompt"].get<std::string>();
      if (c.contains("label")) s.label = c["label"].get<int64_t>();
      s.truncation = c["truncation_rate"].get<float>();
      s.guidance = c["guidance_scale"].get<float>();
      s.seed = c["seed"].get<uint64_t>();
      s.learnable_null = c.value("learnable_cf", false);
      cases.push_back(s);
    }
  }
  return cases;
}

class OfficialParityTest : public ::testing::Test {
 protected:
  void SetUp() override { VQD_REQUIRE_OFFICIAL_PARITY(); }
};

TEST_F(OfficialParityTest, ConvertedDirectoriesLoadWithTheirFamilyAndDefaults) {
  const pipeline::PipelineInfo& text = Pipeline(OfficialModel::kText).info();
  EXPECT_EQ(text.conditioning, pipeline::Conditioning::kText);
  EXPECT_EQ(text.sampler, pipeline::Sampler::kOfficial);
  EXPECT_EQ(text.codebook_size, 23);
  EXPECT_EQ(text.grid_height, 4);
  EXPECT_EQ(text.image_height, 32);
  EXPECT_TRUE(text.learned_null_embeddings);
  EXPECT_FLOAT_EQ(text.default_guidance_scale, 3.0f);  // a learned null: coco_learnable's defaults
  EXPECT_FLOAT_EQ(text.default_truncation_rate, 1.0f);
  EXPECT_FALSE(Pipeline(OfficialModel::kTextZeroShot).info().learned_null_embeddings);
  const pipeline::PipelineInfo& cls = Pipeline(OfficialModel::kClass).info();
  EXPECT_EQ(cls.conditioning, pipeline::Conditioning::kClassLabel);
  EXPECT_EQ(cls.num_classes, 11);
  EXPECT_EQ(cls.codebook_size, 37);
  EXPECT_EQ(cls.grid_height, 4);
  EXPECT_EQ(cls.image_height, 64);
  EXPECT_FALSE(cls.learned_null_embeddings);  // 11 rows: the null label 1000 is the mean row
  EXPECT_FLOAT_EQ(cls.default_guidance_scale, 1.0f);
  EXPECT_FLOAT_EQ(cls.default_truncation_rate, 0.86f);
  EXPECT_EQ(cls.max_prompt_tokens, 0);
}

TEST_F(OfficialParityTest, ShrinkTablesAndSchedules) {
  for (const auto& [family, table, k] : {std::tuple<std::string, std::string, int64_t>{kText, "taming_vqvae_23.pt", 23},
                                         {kImagenet, "taming_vqvae_37.pt", 37}}) {
    auto f2q = io::ReadTorchBinTensor(testing::OfficialPath(family, table));
    ASSERT_TRUE(f2q.ok()) << f2q.status();
    auto q2f = convert::QuantizeToFull(*f2q, k, table);
    ASSERT_TRUE(q2f.ok()) << q2f.status();
    EXPECT_TRUE(torch::equal(*q2f, OfficialGolden(family, "vqvae.quantize_to_full"))) << family;
  }
  for (const auto& [family, model] :
       {std::pair<std::string, OfficialModel>{kText, OfficialModel::kText}, {kImagenet, OfficialModel::kClass}}) {
    // The official sampler uses the checkpoint's (EMA) buffers, bit for bit.
    const io::TensorMap buffers = Pipeline(model).official_schedule().ToTensors();
    for (const auto& [name, tensor] : buffers) {
      EXPECT_TRUE(torch::equal(tensor, OfficialGolden(family, "schedule.ema." + name))) << family << " " << name;
    }
    // The diffusers-style schedule of the same K equals the one a fresh official model registers.
    diffusion::VqScheduleConfig config;
    config.num_vec_classes = Pipeline(model).info().codebook_size + 1;
    const diffusion::VqSchedule fresh = diffusion::VqSchedule::Build(config);
    const std::map<std::string, torch::Tensor> ours = {
        {"log_at", fresh.log_at},         {"log_bt", fresh.log_bt},         {"log_ct", fresh.log_ct},
        {"log_cumprod_at", fresh.log_cumprod_at}, {"log_cumprod_bt", fresh.log_cumprod_bt},
        {"log_cumprod_ct", fresh.log_cumprod_ct}};
    for (const auto& [name, tensor] : ours) {
      EXPECT_TRUE(torch::equal(tensor, OfficialGolden(family, "schedule.fresh." + name))) << family << " " << name;
    }
  }
}

TEST_F(OfficialParityTest, TokenizerMatchesTheOfficialOne) {
  // The small model's own vocabulary (end_idx 290), with the official text cleaning and padding.
  const nlohmann::json& prompts = testing::OfficialMeta(kText)["tokenizer_prompts"];
  const torch::Tensor ids = TextGolden("tokenizer.model.ids");
  const text::ClipTokenizer& tokenizer = Pipeline(OfficialModel::kText).tokenizer();
  ASSERT_EQ(ids.size(0), static_cast<int64_t>(prompts.size()));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::vector<int64_t> ours = tokenizer.EncodeToLength(prompts[i].get<std::string>());
    EXPECT_TRUE(torch::equal(torch::tensor(ours, torch::kInt64), ids[static_cast<int64_t>(i)]))
        << "prompt " << i << ": " << prompts[i];
  }
}

// Gzips `text` as the official bpe_simple_vocab_16e6.txt.gz is stored.
std::string Gzip(const std::string& text) {
  z_stream s{};
  deflateInit2(&s, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&s, text.size()) + 64, '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  s.avail_in = static_cast<uInt>(text.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  deflate(&s, Z_FINISH);
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

TEST_F(OfficialParityTest, FullVocabularyTokenizerFromEitherBpeFile) {
  // The released models' tokenizer (end_idx 49152) from a CLIP merges.txt and from the same merges
  // gzipped as the official file is, against the official tokenizer's ids.
  const std::string merges_txt = testing::TinyPath("model/tokenizer/merges.txt");
  auto plain = text::ReadOpenAiBpeMerges(merges_txt, 49152);
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto bytes = io::ReadFile(merges_txt, 64 << 20);
  ASSERT_TRUE(bytes.ok());
  const std::string gz = testing::TestScratchDir() + "/bpe_simple_vocab_16e6.txt.gz";
  ASSERT_TRUE(io::WriteFile(gz, Gzip(*bytes)).ok());
  auto gzipped = text::ReadOpenAiBpeMerges(gz, 49152);
  ASSERT_TRUE(gzipped.ok()) << gzipped.status();
  EXPECT_EQ(*plain, *gzipped);
  auto vocabulary = text::ClipVocabulary(*plain, false);
  ASSERT_TRUE(vocabulary.ok()) << vocabulary.status();
  EXPECT_EQ(vocabulary->size(), 49408u);
  const std::string dir = testing::TestScratchDir() + "/full-tokenizer";
  ASSERT_TRUE(text::WriteClipTokenizerFiles(dir, *vocabulary, *plain).ok());
  auto tokenizer = text::ClipTokenizer::Load(dir, text::TokenizerRules::kOpenAi);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const nlohmann::json& prompts = testing::OfficialMeta(kText)["tokenizer_prompts"];
  const torch::Tensor ids = TextGolden("tokenizer.full.ids");
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_TRUE(torch::equal(torch::tensor(tokenizer->EncodeToLength(prompts[i].get<std::string>()), torch::kInt64),
                             ids[static_cast<int64_t>(i)]))
        << "prompt " << i << ": " << prompts[i];
  }
  // diffusers' rules would differ on this prompt set (the pad "!" split out, no HTML unescaping).
  auto transformers = text::ClipTokenizer::Load(dir, text::TokenizerRules::kTransformers);
  ASSERT_TRUE(transformers.ok());
  int differing = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    differing += transformers->EncodeToLength(prompts[i].get<std::string>()) !=
                 tokenizer->EncodeToLength(prompts[i].get<std::string>());
  }
  EXPECT_GE(differing, 2);
}

TEST_F(OfficialParityTest, ClipTextTower) {
  torch::InferenceMode guard;
  pipeline::VqDiffusionPipeline& p = Pipeline(OfficialModel::kText);
  const torch::Tensor ids = TextGolden("clip.input_ids");
  const nlohmann::json& prompts = testing::OfficialMeta(kText)["clip_prompts"];
  for (int64_t i = 0; i < ids.size(0); ++i) {
    auto encoding = p.EncodePrompt(prompts[static_cast<size_t>(i)].get<std::string>());
    ASSERT_TRUE(encoding.ok()) << encoding.status();
    EXPECT_TRUE(torch::equal(torch::tensor((*encoding)->input_ids, torch::kInt64), ids[i])) << i;
  }
  auto cond = p.EncodeIds(ids);
  ASSERT_TRUE(cond.ok()) << cond.status();
  EXPECT_TRUE(AllClose("clip.cond_emb", *cond, TextGolden("clip.cond_emb"), kLogTol));
  EXPECT_TRUE(AllClose("clip.encode_text_row1", p.text_encoder()(ids.narrow(0, 1, 1)),
                       TextGolden("clip.encode_text_row1"), kLogTol));
  // The null conditions: the learned one as stored, the zero-shot one CLIP("") normalised.
  EXPECT_TRUE(AllClose("null.learned", p.null_embeddings()[0], TextGolden("null.learned"), 0));
  EXPECT_TRUE(AllClose("zero-shot null", Pipeline(OfficialModel::kTextZeroShot).null_embeddings()[0],
                       TextGolden("clip.cond_emb")[0], kLogTol));
}

// The condition of transformer case `n` of the text family (meta.json's transformer_cases).
torch::Tensor TextCaseCondition(int n) {
  const torch::Tensor cond = TextGolden("clip.cond_emb");
  if (n == 0 || n == 3) return cond.narrow(0, 1, 2);
  if (n == 1 || n == 4) return cond.narrow(0, 0, 1).expand({2, -1, -1});
  return TextGolden("null.learned").unsqueeze(0).expand({2, -1, -1});
}

// predict_start of the official code from our transformer's log-softmax.
torch::Tensor PredictStart(const torch::Tensor& log_p) {
  return diffusion::AppendMaskRow(diffusion::OfficialClamp(log_p));
}

TEST_F(OfficialParityTest, TextTransformerLogProbsAndPosterior) {
  torch::InferenceMode guard;
  pipeline::VqDiffusionPipeline& p = Pipeline(OfficialModel::kText);
  for (int n = 0; n < 5; ++n) {
    const std::string c = "transformer.case" + std::to_string(n) + ".";
    const torch::Tensor x_t = TextGolden(c + "x_t"), t = TextGolden(c + "t");
    const torch::Tensor log_p = p.transformer()->ForwardFromHiddenStates(x_t, t, TextCaseCondition(n));
    EXPECT_TRUE(AllClose(c + "logits (log-softmax)", log_p,
                         torch::log_softmax(TextGolden(c + "logits").to(torch::kFloat64), 1), kLogTol));
    const torch::Tensor log_x0 = PredictStart(log_p);
    EXPECT_TRUE(AllClose(c + "log_x0", log_x0, TextGolden(c + "log_x0"), kLogTol));
    EXPECT_TRUE(torch::equal(log_x0.narrow(1, 23, 1), TextGolden(c + "log_x0").narrow(1, 23, 1)));  // the -70 row
    EXPECT_TRUE(AllClose(c + "q_posterior",
                         diffusion::OfficialQPosterior(p.official_schedule(), TextGolden(c + "log_x0"), x_t, t),
                         TextGolden(c + "q_posterior"), kLogTol));
  }
}

TEST_F(OfficialParityTest, TrainingWeightsWithNoEma) {
  torch::InferenceMode guard;
  pipeline::VqDiffusionPipeline& p = Pipeline(OfficialModel::kTextNoEma);
  // Case 0 through ckpt["model"]'s own CLIP and transformer.
  auto cond = p.EncodeIds(TextGolden("clip.input_ids").narrow(0, 1, 2));
  ASSERT_TRUE(cond.ok()) << cond.status();
  const torch::Tensor log_p = p.transformer()->ForwardFromHiddenStates(
      TextGolden("transformer.case0.x_t"), TextGolden("transformer.case0.t"), *cond);
  EXPECT_TRUE(AllClose("transformer_noema.case0.log_x0", PredictStart(log_p),
                       TextGolden("transformer_noema.case0.log_x0"), kLogTol));
  // And the EMA conversion really differs from it.
  EXPECT_GT(testing::MaxAbsDiff(TextGolden("transformer_noema.case0.log_x0"), TextGolden("transformer.case0.log_x0")),
            1e-3);
}

TEST_F(OfficialParityTest, ClassTransformerLogProbsAndPosterior) {
  torch::InferenceMode guard;
  pipeline::VqDiffusionPipeline& p = Pipeline(OfficialModel::kClass);
  for (int n = 0; n < 5; ++n) {
    const std::string c = "transformer.case" + std::to_string(n) + ".";
    const torch::Tensor x_t = ClassGolden(c + "x_t"), t = ClassGolden(c + "t");
    const torch::Tensor labels = ClassGolden(c + "labels").to(torch::kInt64);
    const torch::Tensor log_p = p.class_transformer()(x_t, t, labels);
    EXPECT_TRUE(AllClose(c + "logits (log-softmax)", log_p,
                         torch::log_softmax(ClassGolden(c + "logits").to(torch::kFloat64), 1), kLogTol));
    EXPECT_TRUE(AllClose(c + "log_x0", PredictStart(log_p), ClassGolden(c + "log_x0"), kLogTol));
    EXPECT_TRUE(AllClose(c + "q_posterior",
                         diffusion::OfficialQPosterior(p.official_schedule(), ClassGolden(c + "log_x0"), x_t, t),
                         ClassGolden(c + "q_posterior"), kLogTol));
  }
}

TEST_F(OfficialParityTest, ClassAdaLayerNormRowsMeanAndThePerRowDeviation) {
  torch::InferenceMode guard;
  pipeline::VqDiffusionPipeline& p = Pipeline(OfficialModel::kClass);
  const torch::Tensor h = ClassGolden("class.h");
  auto& blocks = *p.class_transformer()->transformer_blocks;
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto block = blocks[i]->as<model::ClassTransformerBlockImpl>();
    const std::string b = ".block" + std::to_string(i) + ".ln2_out";
    EXPECT_TRUE(AllClose("emb_mean", block->norm_class->emb->weight.mean(0),
                         ClassGolden("class.block" + std::to_string(i) + ".emb_mean"), 1e-6));
    for (const std::string c : {"rows", "null_1000"}) {
      const torch::Tensor labels = ClassGolden("class." + c + ".labels").to(torch::kInt64);
      EXPECT_TRUE(AllClose("class." + c + b, block->norm_class(h, labels), ClassGolden("class." + c + b), kLogTol));
    }
    // The official code lets the first label decide for the whole batch ([1000, 7]: both rows get
    // the mean). This port decides per row, so that null and real rows can share a batch: row 0 is
    // the mean as officially, row 1 is class 7's.
    const torch::Tensor quirk = block->norm_class(h, torch::tensor({1000, 7}, torch::kInt64));
    const torch::Tensor golden = ClassGolden("class.quirk_first_decides" + b);
    EXPECT_TRUE(AllClose("quirk row 0", quirk[0], golden[0], kLogTol));
    EXPECT_TRUE(AllClose("quirk row 1", quirk[1], block->norm_class(h, torch::tensor({7, 7}, torch::kInt64))[1], 0));
    EXPECT_GT(testing::MaxAbsDiff(quirk[1], golden[1]), 1e-3);
  }
}

TEST_F(OfficialParityTest, VqganDecodeThroughTheBakedCodebook) {
  torch::InferenceMode guard;
  for (const auto& [family, model] :
       {std::pair<std::string, OfficialModel>{kText, OfficialModel::kText}, {kImagenet, OfficialModel::kClass}}) {
    pipeline::VqDiffusionPipeline& p = Pipeline(model);
    const torch::Tensor tokens = OfficialGolden(family, "vqvae.tokens");
    const int64_t g = p.info().grid_height;
    const torch::Tensor z = p.vqvae()->Lookup(tokens, g, g);
    EXPECT_TRUE(AllClose(family + " vqvae.z", z, OfficialGolden(family, "vqvae.z"), 0));
    auto images = p.Decode(tokens);  // [B, H, W, 3] in [0, 1]
    ASSERT_TRUE(images.ok()) << images.status();
    EXPECT_TRUE(AllClose(family + " vqvae.image", images->permute({0, 3, 1, 2}) * 255,
                         OfficialGolden(family, "vqvae.image"), 1e-2));
  }
}

// One official step for a sample case's condition through the pipeline's batched path.
torch::Tensor CfPredictStart(pipeline::VqDiffusionPipeline& p, const SampleCase& s, const torch::Tensor& x_t,
                             int64_t t) {
  auto condition = p.EncodeCondition(s.prompt, s.label);
  if (!condition.ok()) throw std::runtime_error(std::string(condition.status().message()));
  torch::Generator gen = diffusion::MakeGenerator(torch::kCPU, 0);
  pipeline::SampleGroup group;
  group.prompt = *condition;
  group.tokens = x_t;
  group.timestep = t;
  group.guidance_scale = s.guidance;
  group.truncation_rate = s.truncation;
  group.generator = &gen;
  torch::Tensor log_x0;
  group.log_p_x_0_out = &log_x0;
  std::vector<pipeline::SampleGroup*> batch = {&group};
  absl::Status status = p.DenoiseStep(batch);
  if (!status.ok()) throw std::runtime_error(std::string(status.message()));
  return log_x0;
}

TEST_F(OfficialParityTest, GuidanceAndTruncationStep) {
  for (const SampleCase& s : SampleCases()) {
    pipeline::VqDiffusionPipeline& p = Pipeline(s.model());
    const torch::Tensor x_t = OfficialGolden(s.family, "transformer.case1.x_t");
    const int64_t t = OfficialGolden(s.family, "transformer.case1.t")[0].item<int64_t>();
    EXPECT_TRUE(AllClose(s.family + " " + s.Name("cf_predict_start"), CfPredictStart(p, s, x_t, t),
                         s.Golden("cf_predict_start"), kLogTol));
  }
}

TEST_F(OfficialParityTest, TeacherForcedGridsAtEveryStep) {
  // Each step starts from the official run's previous grid; the generator advances as the official
  // script's global one does (one rand_like per step), so every step's sample must be the golden one.
  for (const SampleCase& s : SampleCases()) {
    pipeline::VqDiffusionPipeline& p = Pipeline(s.model());
    auto condition = p.EncodeCondition(s.prompt, s.label);
    ASSERT_TRUE(condition.ok()) << condition.status();
    const torch::Tensor grids = s.Golden("grids").to(torch::kInt64);  // [100, B, N]
    torch::Generator gen = diffusion::MakeGenerator(torch::kCPU, s.seed);
    pipeline::SampleGroup group;
    group.prompt = *condition;
    group.guidance_scale = s.guidance;
    group.truncation_rate = s.truncation;
    group.generator = &gen;
    std::vector<pipeline::SampleGroup*> batch = {&group};
    int mismatched_steps = 0;
    for (int64_t k = 0; k < grids.size(0); ++k) {
      group.tokens = k == 0 ? p.MaskedTokens(grids.size(1)) : grids[k - 1].clone();
      group.timestep = 99 - k;
      ASSERT_TRUE(p.DenoiseStep(batch).ok());
      if (!torch::equal(group.tokens, grids[k])) ++mismatched_steps;
    }
    EXPECT_EQ(mismatched_steps, 0) << s.family << " " << s.Name("grids");
  }
}

TEST_F(OfficialParityTest, WholeSampleRunsGiveTheGoldenGridsAndImages) {
  for (const SampleCase& s : SampleCases()) {
    pipeline::VqDiffusionPipeline& p = Pipeline(s.model());
    pipeline::GenerateParams params;
    params.prompt = s.prompt;
    params.class_label = s.label;
    params.num_images = 2;
    params.guidance_scale = s.guidance;
    params.truncation_rate = s.truncation;
    params.seed = s.seed;
    auto result = pipeline::Generate(p, params, {}, /*keep_step_tokens=*/true);
    ASSERT_TRUE(result.ok()) << result.status();
    const torch::Tensor grids = s.Golden("grids").to(torch::kInt64);
    for (int64_t k = 0; k < grids.size(0); ++k) {
      ASSERT_TRUE(torch::equal(result->step_tokens[static_cast<size_t>(k)], grids[k]))
          << s.family << " " << s.Name("grids") << " diverges at step " << k;
    }
    EXPECT_TRUE(AllClose(s.family + " " + s.Name("first_log_x0"), result->first_log_p_x_0, s.Golden("first_log_x0"),
                         kLogTol));
    const std::string image_name = s.Name("image_uint8");
    if (testing::OfficialGoldens(s.family).count(image_name)) {
      // The official script truncates (astype(uint8)); compare within one level.
      const torch::Tensor ours = (result->images * 255).floor();
      EXPECT_TRUE(AllClose(s.family + " " + image_name, ours, s.Golden("image_uint8"), 1.0));
    }
  }
}

TEST_F(OfficialParityTest, SharingABatchChangesNoRequestsGrids) {
  // Both ImageNet runs in one batch at every step (different labels, guidance and truncation), as
  // the engine batches them: each still gives its golden grids.
  pipeline::VqDiffusionPipeline& p = Pipeline(OfficialModel::kClass);
  std::vector<SampleCase> cases;
  for (const SampleCase& s : SampleCases()) {
    if (s.family == kImagenet) cases.push_back(s);
  }
  ASSERT_EQ(cases.size(), 2u);
  std::vector<torch::Generator> gens;
  std::vector<pipeline::SampleGroup> groups(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) gens.push_back(diffusion::MakeGenerator(torch::kCPU, cases[i].seed));
  std::vector<pipeline::SampleGroup*> batch;
  for (size_t i = 0; i < cases.size(); ++i) {
    groups[i].prompt = *p.EncodeClassLabel(*cases[i].label);
    groups[i].tokens = p.MaskedTokens(2);
    groups[i].guidance_scale = cases[i].guidance;
    groups[i].truncation_rate = cases[i].truncation;
    groups[i].generator = &gens[i];
    batch.push_back(&groups[i]);
  }
  for (int64_t k = 0; k < 100; ++k) {
    for (auto& g : groups) g.timestep = 99 - k;
    ASSERT_TRUE(p.DenoiseStep(batch).ok());
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_TRUE(torch::equal(groups[i].tokens, cases[i].Golden("grids")[99].to(torch::kInt64))) << i;
  }
}

TEST_F(OfficialParityTest, ConditionsAreCheckedAgainstTheModel) {
  pipeline::VqDiffusionPipeline& cls = Pipeline(OfficialModel::kClass);
  EXPECT_EQ(cls.EncodeCondition("a red bus", std::nullopt).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(cls.EncodeCondition("", std::nullopt).status().message(), "class_label"));
  EXPECT_TRUE(absl::StrContains(cls.EncodeClassLabel(11).status().message(), "class_label: must be in [0, 11)"));
  EXPECT_FALSE(cls.EncodeClassLabel(-1).ok());
  pipeline::VqDiffusionPipeline& text = Pipeline(OfficialModel::kText);
  EXPECT_TRUE(absl::StrContains(text.EncodeCondition("", 3).status().message(), "class_label: model"));
  // Guidance below 1 would be guided by the official code; this server refuses it for these models.
  pipeline::GenerateParams params;
  params.guidance_scale = 0.5f;
  EXPECT_TRUE(absl::StrContains(pipeline::ValidateGenerateParams(params, text.info()).message(), "must be >= 1"));
  params.guidance_scale = 0.9995f;  // within the official tolerance of 1: no guidance either way
  EXPECT_TRUE(pipeline::ValidateGenerateParams(params, text.info()).ok());
}

// A conversion of the small text checkpoint with some inputs replaced; returns its status.
absl::Status ConvertWith(const std::function<void(convert::OfficialConversionOptions&)>& change,
                         const std::string& name) {
  convert::OfficialConversionOptions options;
  options.checkpoint = testing::OfficialPath(kText, "text_small_learnable.pth");
  options.config = testing::OfficialPath(kText, "config.yaml");
  options.bpe = testing::TinyPath("model/tokenizer/merges.txt");
  options.out = testing::TestScratchDir() + "/broken-" + name;
  change(options);
  absl::Status status = convert::ConvertOfficialCheckpoint(options).status();
  EXPECT_FALSE(std::filesystem::exists(options.out + "/model_index.json")) << name << " left a model behind";
  return status;
}

TEST_F(OfficialParityTest, ConversionRefusesBrokenOrMismatchedInputs) {
  const std::string scratch = testing::TestScratchDir();
  auto write = [&](const std::string& file, const std::string& bytes) {
    EXPECT_TRUE(io::WriteFile(scratch + "/" + file, bytes).ok());
    return scratch + "/" + file;
  };
  auto checkpoint = io::ReadFile(testing::OfficialPath(kText, "text_small_learnable.pth"), 64 << 20);
  ASSERT_TRUE(checkpoint.ok());
  auto config = io::ReadFile(testing::OfficialPath(kText, "config.yaml"), 1 << 20);
  ASSERT_TRUE(config.ok());
  auto expect = [](const absl::Status& s, const std::string& text) {
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(absl::StrContains(s.message(), text)) << s.message() << "\nexpected to contain: " << text;
  };

  const std::string half = write("half.pth", checkpoint->substr(0, checkpoint->size() / 2));
  expect(ConvertWith([&](auto& o) { o.checkpoint = half; }, "truncated"), "half.pth");
  const std::string junk = write("junk.pth", std::string(4096, 'x'));
  expect(ConvertWith([&](auto& o) { o.checkpoint = junk; }, "junk"), "junk.pth");
  // The other family's checkpoint, VQGAN and shrink table under the text config.
  expect(ConvertWith([&](auto& o) { o.checkpoint = testing::OfficialPath(kImagenet, "imagenet_small.pth"); }, "family"),
         "the weights are a class-family model");
  expect(ConvertWith([&](auto& o) { o.shrink_table = testing::OfficialPath(kImagenet, "taming_vqvae_37.pt"); }, "table"),
         "shrink table's length");
  expect(ConvertWith([&](auto& o) { o.vqgan_config = testing::OfficialPath(kImagenet, "vqgan_f16_small.yaml"); }, "vqgan"),
         "n_embed");
  // A config that does not describe the weights; the head count alone is taken on trust.
  std::string layers = *config;
  layers.replace(layers.find("n_layer: 2"), 10, "n_layer: 3");
  const std::string three = write("three_layers.yaml", layers);
  expect(ConvertWith([&](auto& o) {
           o.config = three;
           o.vqgan_config = testing::OfficialPath(kText, "taming_gumbel_f8_small.yaml");
           o.shrink_table = testing::OfficialPath(kText, "taming_vqvae_23.pt");
         }, "layers"),
         "the block count is 2 in the weights but 3 in");
  const std::string not_yaml = write("broken.yaml", "model: [1, 2\n");
  expect(ConvertWith([&](auto& o) { o.config = not_yaml; }, "yaml"), "broken.yaml:2:1: invalid YAML");
  // A BPE file that is not CLIP's, or that is too short for the config's end_idx.
  const std::string short_bpe = write("short_merges.txt", "#version: 0.2\ni n\n");
  expect(ConvertWith([&](auto& o) { o.bpe = short_bpe; }, "bpe"), "has 1 merges; end_idx 290 needs 32");
  const std::string headless = write("headless.txt", "i n\nt h\n");
  expect(ConvertWith([&](auto& o) { o.bpe = headless; }, "header"), "not a \"#version\" header");
  // Training weights in place of the EMA ones need --no-ema; without an "ema" dict the official
  // loader falls back to them, and so does the converter (tested above with kTextNoEma).
}

}  // namespace
}  // namespace vqd
