// Tests of the CLIP tokenizer (against transformers' ids in shared/parity) and of the tiny
// tokenizer the project trains itself.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "text/bpe_trainer.h"
#include "text/byte_level_bpe.h"
#include "text/clip_tokenizer.h"

namespace vqd::text {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

#ifndef VQD_PARITY_DIR
#define VQD_PARITY_DIR ""
#endif

std::string ParityDir() {
  const char* env = std::getenv("VQD_PARITY_DIR");
  return (env != nullptr && *env != '\0') ? std::string(env) : std::string(VQD_PARITY_DIR);
}

fs::path ParityTiny() { return fs::path(ParityDir()) / "tiny"; }

bool HaveParityData() {
  std::error_code ec;
  return fs::exists(ParityTiny() / "tokenizer_cases.json", ec) &&
         fs::exists(ParityTiny() / "model" / "tokenizer" / "tokenizer.json", ec) &&
         fs::exists(ParityTiny() / "model-bin" / "tokenizer" / "vocab.json", ec);
}

#define REQUIRE_PARITY_DATA()                                                                   \
  do {                                                                                          \
    if (!HaveParityData()) {                                                                    \
      std::fprintf(stderr,                                                                      \
                   "\n*** PARITY DATA NOT FOUND under %s: tokenizer parity is NOT tested. Set " \
                   "VQD_PARITY_DIR to shared/parity. ***\n\n",                                  \
                   ParityDir().c_str());                                                        \
      GTEST_SKIP() << "PARITY DATA NOT FOUND under " << ParityDir()                             \
                   << " (set VQD_PARITY_DIR): tokenizer parity NOT tested";                     \
    }                                                                                           \
  } while (0)

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  ASSERT_TRUE(out.good()) << path;
}

// A fresh directory under the test temp dir, removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::path(testing::TempDir()) /
            ("vqd_text_" + std::to_string(::getpid()) + "_" + info->name() + "_" +
             std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct Case {
  std::string text;
  std::vector<int64_t> ids;
  int64_t untruncated_length;
};

std::vector<Case> LoadCases() {
  const Json json = Json::parse(ReadAll(ParityTiny() / "tokenizer_cases.json"));
  std::vector<Case> cases;
  for (const Json& c : json) {
    cases.push_back({c.at("text").get<std::string>(), c.at("input_ids").get<std::vector<int64_t>>(),
                     c.at("untruncated_length").get<int64_t>()});
  }
  return cases;
}

ClipTokenizer LoadOrDie(const fs::path& dir) {
  absl::StatusOr<ClipTokenizer> tok = ClipTokenizer::Load(dir.string());
  EXPECT_TRUE(tok.ok()) << tok.status();
  if (!tok.ok()) std::abort();
  return *std::move(tok);
}

fs::path NewLayout() { return ParityTiny() / "model" / "tokenizer"; }
fs::path OldLayout() { return ParityTiny() / "model-bin" / "tokenizer"; }

void ExpectAllCases(const ClipTokenizer& tok) {
  const std::vector<Case> cases = LoadCases();
  ASSERT_EQ(cases.size(), 17u);
  for (const Case& c : cases) {
    int64_t untruncated = -1;
    const std::vector<int64_t> ids = tok.EncodeToLength(c.text, &untruncated);
    EXPECT_EQ(ids, c.ids) << "prompt: \"" << c.text << "\"";
    EXPECT_EQ(untruncated, c.untruncated_length) << "prompt: \"" << c.text << "\"";
  }
}

void ExpectParityAccessors(const ClipTokenizer& tok) {
  EXPECT_EQ(tok.bos_id(), 49406);
  EXPECT_EQ(tok.eos_id(), 49407);
  EXPECT_EQ(tok.unk_id(), 49407);
  EXPECT_EQ(tok.pad_id(), 49407);
  EXPECT_EQ(tok.max_length(), 77);
  EXPECT_EQ(tok.vocab_size(), 49408);
}

TEST(ClipTokenizerParity, TokenizerJsonLayoutMatchesAllCases) {
  REQUIRE_PARITY_DATA();
  const ClipTokenizer tok = LoadOrDie(NewLayout());
  ExpectParityAccessors(tok);
  ExpectAllCases(tok);
}

TEST(ClipTokenizerParity, OldVocabMergesLayoutMatchesAllCases) {
  REQUIRE_PARITY_DATA();
  const ClipTokenizer tok = LoadOrDie(OldLayout());
  ExpectParityAccessors(tok);
  ExpectAllCases(tok);
}

TEST(ClipTokenizerParity, SpecAnchors) {
  REQUIRE_PARITY_DATA();
  for (const fs::path& dir : {NewLayout(), OldLayout()}) {
    const ClipTokenizer tok = LoadOrDie(dir);
    EXPECT_EQ(tok.Encode("teddy bear playing in the pool"),
              (std::vector<int64_t>{49406, 11798, 4298, 1629, 530, 518, 2831, 49407}));
    EXPECT_EQ(tok.Encode(""), (std::vector<int64_t>{49406, 49407}));
    EXPECT_EQ(tok.Encode("a long exposure photo of waterfall"),
              (std::vector<int64_t>{49406, 320, 1538, 11903, 1125, 539, 16403, 49407}));
    EXPECT_EQ(tok.Encode("horse"), (std::vector<int64_t>{49406, 4558, 49407}));
    EXPECT_EQ(tok.Encode("A group of elephants walking in muddy water"),
              (std::vector<int64_t>{49406, 320, 1771, 539, 16871, 3941, 530, 21524, 1573, 49407}));
    // Vocabulary layout facts from the spec.
    EXPECT_EQ(tok.TokenToId("!"), 0);
    EXPECT_EQ(tok.TokenToId("!</w>"), 256);
  }
}

TEST(ClipTokenizerParity, EmptyPromptIsBosEosThenPadding) {
  REQUIRE_PARITY_DATA();
  const ClipTokenizer tok = LoadOrDie(NewLayout());
  int64_t untruncated = 0;
  const std::vector<int64_t> ids = tok.EncodeToLength("", &untruncated);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(ids[0], 49406);
  for (size_t i = 1; i < ids.size(); ++i) EXPECT_EQ(ids[i], 49407) << i;
  EXPECT_EQ(untruncated, 2);
}

TEST(ClipTokenizerParity, LongPromptIsTruncatedKeepingEos) {
  REQUIRE_PARITY_DATA();
  const ClipTokenizer tok = LoadOrDie(NewLayout());
  std::string prompt;
  while (prompt.size() < 300) prompt += "dog, ";
  ASSERT_EQ(prompt.size(), 300u);
  const std::vector<int64_t> full = tok.Encode(prompt);
  ASSERT_EQ(full.size(), 122u);  // bos + 60 x (dog ,) + eos
  int64_t untruncated = 0;
  const std::vector<int64_t> ids = tok.EncodeToLength(prompt, &untruncated);
  ASSERT_EQ(ids.size(), 77u);
  EXPECT_EQ(untruncated, 122);
  // transformers 5 truncates the tokens before adding bos/eos: the eos stays in the last place
  // (the parity case "word0 ... word59" pins this down too).
  EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.begin() + 76),
            std::vector<int64_t>(full.begin(), full.begin() + 76));
  EXPECT_EQ(ids.front(), 49406);
  EXPECT_EQ(ids.back(), 49407);
  EXPECT_NE(full[76], 49407);
}

TEST(ClipTokenizerParity, PadBangIsSpecialWithIdZero) {
  REQUIRE_PARITY_DATA();
  ScratchDir dir;
  fs::copy_file(OldLayout() / "vocab.json", dir.path() / "vocab.json");
  fs::copy_file(OldLayout() / "merges.txt", dir.path() / "merges.txt");
  WriteAll(dir.path() / "tokenizer_config.json", R"({
    "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
    "pad_token": "!", "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"})");
  const ClipTokenizer tok = LoadOrDie(dir.path());
  EXPECT_EQ(tok.pad_id(), 0);
  const ClipTokenizer reference = LoadOrDie(NewLayout());

  const std::vector<int64_t> wow_ref = reference.Encode("wow");
  ASSERT_EQ(wow_ref.size(), 3u);
  // The literal "!" is split out as the pad token (HF's added-token trie), not BPE'd to "!</w>".
  EXPECT_EQ(tok.Encode("wow!"), (std::vector<int64_t>{49406, wow_ref[1], 0, 49407}));
  EXPECT_EQ(reference.Encode("wow!"), (std::vector<int64_t>{49406, wow_ref[1], 256, 49407}));
  // "!!" is two pad tokens; "?!" splits into "?" and the pad token.
  EXPECT_EQ(tok.Encode("!!"), (std::vector<int64_t>{49406, 0, 0, 49407}));

  const std::vector<int64_t> padded = tok.EncodeToLength("horse");
  ASSERT_EQ(padded.size(), 77u);
  EXPECT_EQ(std::vector<int64_t>(padded.begin(), padded.begin() + 3),
            (std::vector<int64_t>{49406, 4558, 49407}));
  for (size_t i = 3; i < padded.size(); ++i) EXPECT_EQ(padded[i], 0) << i;
  EXPECT_EQ(tok.Decode(padded), "horse");
}

TEST(ClipTokenizerParity, InvalidUtf8IsReplaced) {
  REQUIRE_PARITY_DATA();
  const ClipTokenizer tok = LoadOrDie(NewLayout());
  const std::string fffd = "\xEF\xBF\xBD";
  // A stray byte, a truncated sequence, a surrogate, an overlong form and a cut-off 4-byte form.
  EXPECT_EQ(tok.Encode("dog \xFF cat"), tok.Encode("dog " + fffd + " cat"));
  EXPECT_EQ(tok.Encode("a\xE2\x82 b"), tok.Encode("a" + fffd + " b"));
  EXPECT_EQ(tok.Encode("x\xED\xA0\x80y"), tok.Encode("x" + fffd + fffd + fffd + "y"));
  EXPECT_EQ(tok.Encode("\xC0\xAF"), tok.Encode(fffd + fffd));
  EXPECT_EQ(tok.Encode("bear \xF0\x9F\x90"), tok.Encode("bear " + fffd));
  // Arbitrary bytes never crash and always give bos ... eos.
  std::string all_bytes;
  for (int i = 0; i < 256; ++i) all_bytes.push_back(static_cast<char>(255 - i));
  const std::vector<int64_t> ids = tok.Encode(all_bytes);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 49406);
  EXPECT_EQ(ids.back(), 49407);
  EXPECT_EQ(tok.EncodeToLength(std::string(1000, '\x80')).size(), 77u);
}

TEST(ClipTokenizerParity, ConcurrentEncodeIsDeterministic) {
  REQUIRE_PARITY_DATA();
  const ClipTokenizer tok = LoadOrDie(NewLayout());
  const std::vector<Case> cases = LoadCases();
  std::vector<std::vector<int64_t>> results[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 25; ++round) {
        for (size_t i = 0; i < cases.size(); ++i) {
          // Each thread walks the cases in a different order to mix cache hits and misses.
          const Case& c = cases[(i * (t + 1) + static_cast<size_t>(round)) % cases.size()];
          std::vector<int64_t> ids = tok.EncodeToLength(c.text);
          if (ids != c.ids) results[t].push_back(std::move(ids));
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_TRUE(results[t].empty()) << "thread " << t << " differed";
}

TEST(ClipTokenizerParity, DecodeRoundTrips) {
  REQUIRE_PARITY_DATA();
  const ClipTokenizer tok = LoadOrDie(NewLayout());
  for (const std::string text : {"teddy bear playing in the pool", "café crème brûlée naïve ångström",
                                 "日本語のテキスト", "emoji 🐻🏊 test ✨"}) {
    EXPECT_EQ(tok.Decode(tok.EncodeToLength(text)), text);
  }
  EXPECT_EQ(tok.Decode(tok.Encode("A Teddy Bear!")), "a teddy bear !");
  EXPECT_EQ(tok.Decode({49406, 4558, 49407}, /*skip_special_tokens=*/false),
            "<|startoftext|>horse <|endoftext|>");
  EXPECT_EQ(tok.Decode({4558, 999999}), "horse \xEF\xBF\xBD");
  EXPECT_EQ(tok.IdToToken(4558), "horse</w>");
  EXPECT_EQ(tok.IdToToken(-1), std::nullopt);
}

TEST(ClipTokenizerParity, PrefersTokenizerJson) {
  REQUIRE_PARITY_DATA();
  ScratchDir dir;
  fs::copy_file(NewLayout() / "tokenizer.json", dir.path() / "tokenizer.json");
  fs::copy_file(NewLayout() / "tokenizer_config.json", dir.path() / "tokenizer_config.json");
  WriteAll(dir.path() / "vocab.json", "{ this is not json");
  WriteAll(dir.path() / "merges.txt", "garbage");
  const ClipTokenizer tok = LoadOrDie(dir.path());
  ExpectAllCases(tok);
}

// ---------------------------------------------------------------------------------------------
// Errors (no parity data needed).

// A minimal valid vocabulary: the 512 byte-level symbols and the two special tokens.
void WriteMinimalTokenizer(const fs::path& dir) {
  Json vocab = Json::object();
  int64_t id = 0;
  for (unsigned char b : ByteLevelOrder()) vocab[ByteToUnicode()[b]] = id++;
  for (unsigned char b : ByteLevelOrder()) vocab[ByteToUnicode()[b] + "</w>"] = id++;
  vocab["<|startoftext|>"] = id++;
  vocab["<|endoftext|>"] = id++;
  WriteAll(dir / "vocab.json", vocab.dump());
  WriteAll(dir / "merges.txt", "#version: 0.2\nd o\ndo g</w>\n");
  WriteAll(dir / "tokenizer_config.json",
           R"({"bos_token": "<|startoftext|>", "eos_token": {"content": "<|endoftext|>"},
               "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"})");
}

std::string LoadError(const fs::path& dir) {
  absl::StatusOr<ClipTokenizer> tok = ClipTokenizer::Load(dir.string());
  EXPECT_FALSE(tok.ok());
  return tok.ok() ? "" : std::string(tok.status().message());
}

TEST(ClipTokenizerLoad, MinimalTokenizerWorks) {
  ScratchDir dir;
  WriteMinimalTokenizer(dir.path());
  const ClipTokenizer tok = LoadOrDie(dir.path());
  EXPECT_EQ(tok.max_length(), 77);  // the default
  EXPECT_EQ(tok.vocab_size(), 514);
  EXPECT_EQ(tok.eos_id(), 513);
  // "dog" -> d o g</w> -> do g</w> -> "dog</w>", which is not in the vocabulary: unk.
  EXPECT_EQ(tok.Encode("dog"), (std::vector<int64_t>{512, 513, 513}));
  // "do" -> d o</w>: no merge applies.
  EXPECT_EQ(tok.Encode("do").size(), 4u);
}

TEST(ClipTokenizerLoad, MissingDirectory) {
  const std::string message = LoadError("/nonexistent/vqd/tokenizer");
  EXPECT_NE(message.find("/nonexistent/vqd/tokenizer"), std::string::npos) << message;
}

TEST(ClipTokenizerLoad, MissingVocabNamesTheFile) {
  ScratchDir dir;
  WriteMinimalTokenizer(dir.path());
  fs::remove(dir.path() / "vocab.json");
  const std::string message = LoadError(dir.path());
  EXPECT_NE(message.find("vocab.json"), std::string::npos) << message;
}

TEST(ClipTokenizerLoad, MissingMergesNamesTheFile) {
  ScratchDir dir;
  WriteMinimalTokenizer(dir.path());
  fs::remove(dir.path() / "merges.txt");
  const std::string message = LoadError(dir.path());
  EXPECT_NE(message.find("merges.txt"), std::string::npos) << message;
}

TEST(ClipTokenizerLoad, MalformedJsonNamesTheFile) {
  ScratchDir dir;
  WriteMinimalTokenizer(dir.path());
  WriteAll(dir.path() / "vocab.json", "{\"a\": 1,");
  std::string message = LoadError(dir.path());
  EXPECT_NE(message.find("vocab.json"), std::string::npos) << message;
  EXPECT_NE(message.find("malformed JSON"), std::string::npos) << message;

  WriteMinimalTokenizer(dir.path());
  WriteAll(dir.path() / "tokenizer.json", "[1, 2");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("tokenizer.json"), std::string::npos) << message;

  fs::remove(dir.path() / "tokenizer.json");
  WriteAll(dir.path() / "tokenizer_config.json", "not json");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("tokenizer_config.json"), std::string::npos) << message;
}

TEST(ClipTokenizerLoad, MissingConfigOrKeyNamesIt) {
  ScratchDir dir;
  WriteMinimalTokenizer(dir.path());
  fs::remove(dir.path() / "tokenizer_config.json");
  std::string message = LoadError(dir.path());
  EXPECT_NE(message.find("tokenizer_config.json"), std::string::npos) << message;

  WriteAll(dir.path() / "tokenizer_config.json",
           R"({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>"})");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("pad_token"), std::string::npos) << message;
  EXPECT_NE(message.find("tokenizer_config.json"), std::string::npos) << message;

  // special_tokens_map.json can supply it (and takes precedence).
  WriteAll(dir.path() / "special_tokens_map.json", R"({"pad_token": {"content": "!"}})");
  EXPECT_EQ(LoadOrDie(dir.path()).pad_id(), 0);

  WriteAll(dir.path() / "special_tokens_map.json", R"({"pad_token": "<|nope|>"})");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("<|nope|>"), std::string::npos) << message;
  EXPECT_NE(message.find("special_tokens_map.json"), std::string::npos) << message;

  WriteAll(dir.path() / "special_tokens_map.json", R"({"pad_token": 5})");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("pad_token"), std::string::npos) << message;
}

TEST(ClipTokenizerLoad, RejectsBadIdsMergesAndLengths) {
  ScratchDir dir;
  WriteMinimalTokenizer(dir.path());
  WriteAll(dir.path() / "vocab.json", R"({"a": -1})");
  std::string message = LoadError(dir.path());
  EXPECT_NE(message.find("vocab.json"), std::string::npos) << message;

  WriteAll(dir.path() / "vocab.json", R"({"a": 2147483648})");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("2^31"), std::string::npos) << message;

  WriteAll(dir.path() / "vocab.json", R"({"a": 1, "b": 1})");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("twice"), std::string::npos) << message;

  WriteAll(dir.path() / "vocab.json", R"({"a": "1"})");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("not an integer"), std::string::npos) << message;

  WriteMinimalTokenizer(dir.path());
  WriteAll(dir.path() / "merges.txt", "#version: 0.2\na b\nabc\n");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("merges.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("line 3"), std::string::npos) << message;

  // Merges naming unknown symbols are fine: they are only ranks.
  WriteAll(dir.path() / "merges.txt", "#version: 0.2\nzzz qqq\n");
  EXPECT_TRUE(ClipTokenizer::Load(dir.path().string()).ok());

  WriteAll(dir.path() / "tokenizer_config.json",
           R"({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": "!", "model_max_length": 1e30})");
  message = LoadError(dir.path());
  EXPECT_NE(message.find("model_max_length"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------------------------
// The tiny tokenizer.

TEST(TinyTokenizer, WritesLoadsAndEncodesCommonWordsAsSingleTokens) {
  ScratchDir dir;
  ASSERT_TRUE(WriteTinyClipTokenizer(dir.path().string(), 512).ok());
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json",
                           "special_tokens_map.json"}) {
    EXPECT_TRUE(fs::exists(dir.path() / name)) << name;
  }
  const ClipTokenizer tok = LoadOrDie(dir.path());
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.max_length(), 77);
  EXPECT_EQ(tok.TokenToId("!"), 0);
  EXPECT_EQ(tok.TokenToId("!</w>"), 256);
  EXPECT_EQ(tok.bos_id(), tok.vocab_size() - 2);
  EXPECT_EQ(tok.eos_id(), tok.vocab_size() - 1);
  EXPECT_EQ(tok.unk_id(), tok.eos_id());
  EXPECT_GT(tok.vocab_size(), 512 + 400);
  EXPECT_LE(tok.vocab_size(), 512 + 512 + 2);

  for (const char* word : {"a", "photo", "of", "the", "dog", "cat", "red", "car"}) {
    EXPECT_TRUE(tok.TokenToId(std::string(word) + "</w>").has_value()) << word;
    EXPECT_EQ(tok.Encode(word).size(), 3u) << word;
  }
  const std::vector<int64_t> ids = tok.Encode("a photo of a red car");
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_EQ(tok.Decode(ids), "a photo of a red car");

  // Round trips of text the corpus never saw, unicode included (byte fallback).
  for (const std::string text : {"a photo of a red car", "zebra crossing in tokyo",
                                 "café crème ångström 日本", "emoji 🐻 test"}) {
    EXPECT_EQ(tok.Decode(tok.EncodeToLength(text)), text);
  }
  // Pad "!" like ITHQ.
  const std::vector<int64_t> bang = tok.Encode("wow!");
  EXPECT_EQ(bang[bang.size() - 2], 0);
  const std::vector<int64_t> padded = tok.EncodeToLength("dog");
  EXPECT_EQ(padded.size(), 77u);
  EXPECT_EQ(padded.back(), 0);
}

TEST(TinyTokenizer, OutputIsDeterministic) {
  ScratchDir a, b;
  ASSERT_TRUE(WriteTinyClipTokenizer(a.path().string(), 300).ok());
  ASSERT_TRUE(WriteTinyClipTokenizer(b.path().string(), 300).ok());
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json",
                           "special_tokens_map.json"}) {
    EXPECT_EQ(ReadAll(a.path() / name), ReadAll(b.path() / name)) << name;
  }
  const std::string merges = ReadAll(a.path() / "merges.txt");
  EXPECT_EQ(merges.rfind("#version: 0.2\n", 0), 0u);
  EXPECT_EQ(std::count(merges.begin(), merges.end(), '\n'), 301);
  // A prefix of the 512-merge training: the same first 300 merges.
  ScratchDir c;
  ASSERT_TRUE(WriteTinyClipTokenizer(c.path().string(), 512).ok());
  EXPECT_EQ(ReadAll(c.path() / "merges.txt").substr(0, merges.size()), merges);
}

TEST(TinyTokenizer, RejectsBadMergeCount) {
  ScratchDir dir;
  EXPECT_FALSE(WriteTinyClipTokenizer(dir.path().string(), -1).ok());
  EXPECT_FALSE(WriteTinyClipTokenizer(dir.path().string(), 1000000).ok());
}

TEST(TinyTokenizer, TokenizerJsonWithEitherMergeFormMatchesVocabMerges) {
  ScratchDir base;
  ASSERT_TRUE(WriteTinyClipTokenizer(base.path().string(), 512).ok());
  const ClipTokenizer reference = LoadOrDie(base.path());

  const Json vocab = Json::parse(ReadAll(base.path() / "vocab.json"));
  std::vector<std::string> lines;
  {
    std::istringstream in(ReadAll(base.path() / "merges.txt"));
    std::string line;
    std::getline(in, line);  // #version
    while (std::getline(in, line)) lines.push_back(line);
  }
  const int64_t eos = reference.eos_id();
  for (bool pairs : {false, true}) {
    Json merges = Json::array();
    for (const std::string& line : lines) {
      const size_t space = line.find(' ');
      if (pairs) {
        merges.push_back({line.substr(0, space), line.substr(space + 1)});
      } else {
        merges.push_back(line);
      }
    }
    Json tokenizer = {
        {"version", "1.0"},
        {"added_tokens",
         {{{"id", eos - 1}, {"content", "<|startoftext|>"}, {"special", true}},
          {{"id", eos}, {"content", "<|endoftext|>"}, {"special", true}}}},
        {"model",
         {{"type", "BPE"}, {"end_of_word_suffix", "</w>"}, {"vocab", vocab}, {"merges", merges}}},
    };
    ScratchDir dir;
    WriteAll(dir.path() / "tokenizer.json", tokenizer.dump());
    fs::copy_file(base.path() / "tokenizer_config.json", dir.path() / "tokenizer_config.json");
    const ClipTokenizer tok = LoadOrDie(dir.path());
    for (const char* text : {"a photo of a red car", "A Teddy Bear playing in the POOL!",
                             "it's a dog's life", "<|startoftext|>x<|endoftext|>", ""}) {
      EXPECT_EQ(tok.EncodeToLength(text), reference.EncodeToLength(text)) << text;
    }
    EXPECT_EQ(tok.vocab_size(), reference.vocab_size());
  }
}

// ---------------------------------------------------------------------------------------------
// Pre-tokenisation details that the parity cases do not pin down.

std::vector<std::string> Pieces(const std::string& text) {
  return PreTokenizeClip(NormalizeClip(DecodeUtf8Lossy(text)));
}

TEST(ClipPreTokenizer, SplitsLikeTheClipPattern) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Pieces("It's   a DOG's\tlife!!"), (V{"it", "'s", "a", "dog", "'s", "life", "!!"}));
  EXPECT_EQ(Pieces("don't we'll they're I'd you've i'm"),
            (V{"don", "'t", "we", "'ll", "they", "'re", "i", "'d", "you", "'ve", "i", "'m"}));
  EXPECT_EQ(Pieces("10x 3.14"), (V{"1", "0", "x", "3", ".", "1", "4"}));
  EXPECT_EQ(Pieces("a+b=c (really?)"), (V{"a", "+", "b", "=", "c", "(", "really", "?)"}));
  // An upper-case special token is not split out raw; it lower-cases into one CLIP piece which the
  // ByteLevel pattern then splits.
  EXPECT_EQ(Pieces("<|ENDOFTEXT|>"), (V{"<|", "endoftext", "|>"}));
  // NFC composes e + U+0301; U+0130 lower-cases to i + U+0307 (a mark, so a separate piece).
  EXPECT_EQ(Pieces("cafe\xCC\x81"), (V{"caf\xC3\xA9"}));
  EXPECT_EQ(Pieces("\xC4\xB0"), (V{"i", "\xCC\x87"}));
  // Unicode whitespace (U+3000, U+00A0) separates words.
  EXPECT_EQ(Pieces("a\xE3\x80\x80" "b\xC2\xA0" "c"), (V{"a", "b", "c"}));
  EXPECT_EQ(ByteLevelEncode(" "), "\xC4\xA0");  // U+0120
  EXPECT_EQ(ByteLevelDecode(ByteLevelEncode("any\x01\xFF bytes")), "any\x01\xFF bytes");
}

}  // namespace
}  // namespace vqd::text
