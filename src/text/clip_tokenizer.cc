#include "text/clip_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <queue>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "text/byte_level_bpe.h"
#include "text/openai_text_cleaning.h"

namespace vqd::text {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Limits for files that may come from an untrusted model directory.
constexpr uintmax_t kMaxFileBytes = uintmax_t{64} << 20;
constexpr size_t kMaxVocabEntries = size_t{1} << 22;
constexpr size_t kMaxMerges = size_t{1} << 22;
constexpr size_t kMaxAddedTokens = size_t{1} << 16;
constexpr int64_t kMaxTokenId = (int64_t{1} << 31) - 1;
constexpr int64_t kMaxModelMaxLength = int64_t{1} << 20;
constexpr int64_t kDefaultModelMaxLength = 77;

// The per-word cache holds at most this many words of at most kMaxCachedWordBytes bytes each; it is
// cleared when full (simple, bounded, and words repeat a lot within a workload).
constexpr size_t kCacheCapacity = 16384;
constexpr size_t kMaxCachedWordBytes = 256;

absl::StatusOr<std::string> ReadFileLimited(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer: ", path.string(), ": file not found"));
  }
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: ", path.string(), ": cannot read: ", ec.message()));
  }
  if (size > kMaxFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", path.string(), ": ", size,
                                                   " bytes is over the limit of ", kMaxFileBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::PermissionDeniedError(absl::StrCat("tokenizer: ", path.string(), ": cannot open"));
  }
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (static_cast<uintmax_t>(in.gcount()) != size) {
    return absl::DataLossError(absl::StrCat("tokenizer: ", path.string(), ": short read"));
  }
  return data;
}

absl::StatusOr<Json> ReadJson(const fs::path& path) {
  VQD_ASSIGN_OR_RETURN(std::string text, ReadFileLimited(path));
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: ", path.string(), ": malformed JSON: ", e.what()));
  }
}

absl::Status FileError(const fs::path& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("tokenizer: ", path.string(), ": ", what));
}

absl::StatusOr<int64_t> ParseId(const Json& value, const fs::path& path, const std::string& what) {
  if (!value.is_number_integer()) return FileError(path, absl::StrCat(what, " is not an integer"));
  const int64_t id = value.is_number_unsigned()
                         ? static_cast<int64_t>(std::min<uint64_t>(value.get<uint64_t>(),
                                                                   uint64_t{1} << 40))
                         : value.get<int64_t>();
  if (id < 0 || id > kMaxTokenId) {
    return FileError(path, absl::StrCat(what, " = ", id, " is outside [0, 2^31)"));
  }
  return id;
}

using Vocab = std::unordered_map<std::string, int64_t>;
using Merges = std::vector<std::pair<std::string, std::string>>;

absl::StatusOr<Vocab> ParseVocab(const Json& json, const fs::path& path, const std::string& key) {
  if (!json.is_object()) return FileError(path, absl::StrCat(key, " is not a JSON object"));
  if (json.size() > kMaxVocabEntries) {
    return FileError(path, absl::StrCat(key, " has ", json.size(), " entries, over the limit of ",
                                        kMaxVocabEntries));
  }
  Vocab vocab;
  vocab.reserve(json.size());
  std::unordered_set<int64_t> seen;
  seen.reserve(json.size());
  for (auto it = json.begin(); it != json.end(); ++it) {
    VQD_ASSIGN_OR_RETURN(int64_t id,
                         ParseId(it.value(), path, absl::StrCat(key, "[\"", it.key(), "\"]")));
    if (!seen.insert(id).second) {
      return FileError(path, absl::StrCat(key, ": id ", id, " is used twice (again by \"",
                                          it.key(), "\")"));
    }
    vocab.emplace(it.key(), id);
  }
  if (vocab.empty()) return FileError(path, absl::StrCat(key, " is empty"));
  return vocab;
}

absl::StatusOr<std::pair<std::string, std::string>> SplitMerge(std::string_view line,
                                                               const fs::path& path,
                                                               const std::string& where) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || space == 0 || space + 1 >= line.size() ||
      line.find(' ', space + 1) != std::string_view::npos) {
    return FileError(path, absl::StrCat(where, ": expected two symbols separated by one space"));
  }
  return std::make_pair(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
}

absl::StatusOr<Merges> ParseMergesTxt(std::string_view text, const fs::path& path) {
  Merges merges;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    if (merges.size() >= kMaxMerges) {
      return FileError(path, absl::StrCat("more than ", kMaxMerges, " merges"));
    }
    VQD_ASSIGN_OR_RETURN(auto merge, SplitMerge(line, path, absl::StrCat("line ", line_no)));
    merges.push_back(std::move(merge));
  }
  return merges;
}

absl::StatusOr<Merges> ParseMergesJson(const Json& json, const fs::path& path) {
  if (!json.is_array()) return FileError(path, "model.merges is not a JSON array");
  if (json.size() > kMaxMerges) {
    return FileError(path, absl::StrCat("model.merges has more than ", kMaxMerges, " entries"));
  }
  Merges merges;
  merges.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    const Json& m = json[i];
    const std::string where = absl::StrCat("model.merges[", i, "]");
    if (m.is_string()) {
      VQD_ASSIGN_OR_RETURN(auto merge, SplitMerge(m.get_ref<const std::string&>(), path, where));
      merges.push_back(std::move(merge));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string() &&
               !m[0].get_ref<const std::string&>().empty() &&
               !m[1].get_ref<const std::string&>().empty()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return FileError(path, absl::StrCat(where, " is neither \"a b\" nor [\"a\", \"b\"]"));
    }
  }
  return merges;
}

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool special = true;
};

absl::StatusOr<std::vector<AddedToken>> ParseAddedTokens(const Json& json, const fs::path& path) {
  std::vector<AddedToken> tokens;
  if (json.is_null()) return tokens;
  if (!json.is_array()) return FileError(path, "added_tokens is not a JSON array");
  if (json.size() > kMaxAddedTokens) {
    return FileError(path, absl::StrCat("added_tokens has more than ", kMaxAddedTokens, " entries"));
  }
  for (size_t i = 0; i < json.size(); ++i) {
    const Json& t = json[i];
    const std::string where = absl::StrCat("added_tokens[", i, "]");
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
        t["content"].get_ref<const std::string&>().empty() || !t.contains("id")) {
      return FileError(path, absl::StrCat(where, " needs a non-empty \"content\" and an \"id\""));
    }
    AddedToken token;
    token.content = t["content"].get<std::string>();
    VQD_ASSIGN_OR_RETURN(token.id, ParseId(t["id"], path, absl::StrCat(where, ".id")));
    if (t.contains("special") && t["special"].is_boolean()) token.special = t["special"].get<bool>();
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// A special-token value: "text" or {"content": "text", ...} (AddedToken, old or new format).
absl::StatusOr<std::string> SpecialTokenContent(const Json& value, const fs::path& path,
                                                const std::string& key) {
  if (value.is_string() && !value.get_ref<const std::string&>().empty()) {
    return value.get<std::string>();
  }
  if (value.is_object() && value.contains("content") && value["content"].is_string() &&
      !value["content"].get_ref<const std::string&>().empty()) {
    return value["content"].get<std::string>();
  }
  return FileError(path, absl::StrCat("\"", key,
                                      "\" is neither a non-empty string nor an object with a "
                                      "non-empty \"content\""));
}

}  // namespace

struct ClipTokenizer::Impl {
  // Vocabulary and added tokens.
  Vocab vocab;
  std::unordered_map<std::string, int64_t> added;  // content -> id (added tokens only)
  std::unordered_map<int64_t, std::string> id_to_token;
  std::unordered_set<int64_t> special_ids;

  // BPE over interned symbols: every vocabulary entry, merge part and merge result has a symbol id.
  std::unordered_map<std::string, int32_t> symbol_ids;
  std::vector<int64_t> symbol_vocab_id;  // vocabulary id of each symbol, or -1
  struct MergeInfo {
    int32_t rank;
    int32_t result;
  };
  std::unordered_map<uint64_t, MergeInfo> merges;  // (left << 32 | right) -> merge
  std::array<int32_t, 256> byte_symbol{};      // symbol of each byte's character, or -1 if unknown
  std::array<int32_t, 256> byte_symbol_eow{};  // the same with "</w>"

  // Tokens split out of the raw text, indexed by their first code point (longest first).
  struct SplitToken {
    std::u32string content;
    int64_t id;
  };
  std::vector<SplitToken> split_tokens;
  std::unordered_map<char32_t, std::vector<size_t>> split_index;

  int64_t bos = 0, eos = 0, pad = 0, unk = 0, max_length = kDefaultModelMaxLength;
  TokenizerRules rules = TokenizerRules::kTransformers;
  int64_t vocab_size = 0;

  mutable std::mutex cache_mu;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache;

  int32_t Intern(const std::string& s) {
    auto [it, inserted] = symbol_ids.emplace(s, static_cast<int32_t>(symbol_vocab_id.size()));
    if (inserted) {
      auto v = vocab.find(s);
      symbol_vocab_id.push_back(v == vocab.end() ? -1 : v->second);
    }
    return it->second;
  }

  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }

  const MergeInfo* FindMerge(int32_t a, int32_t b) const {
    if (a < 0 || b < 0) return nullptr;
    auto it = merges.find(PairKey(a, b));
    return it == merges.end() ? nullptr : &it->second;
  }

  void AddSplitToken(const std::string& content, int64_t id) {
    std::u32string u = DecodeUtf8Lossy(content);
    for (const SplitToken& t : split_tokens) {
      if (t.content == u) return;  // first registration wins
    }
    split_tokens.push_back({std::move(u), id});
  }

  void BuildSplitIndex() {
    for (size_t i = 0; i < split_tokens.size(); ++i) {
      split_index[split_tokens[i].content[0]].push_back(i);
    }
    for (auto& [c, list] : split_index) {
      std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
        return split_tokens[a].content.size() > split_tokens[b].content.size();
      });
    }
  }

  // The longest split token that starts at `pos`, or nullptr.
  const SplitToken* MatchSplitToken(const std::u32string& text, size_t pos) const {
    auto it = split_index.find(text[pos]);
    if (it == split_index.end()) return nullptr;
    for (size_t idx : it->second) {
      const SplitToken& t = split_tokens[idx];
      if (text.compare(pos, t.content.size(), t.content) == 0) return &t;
    }
    return nullptr;
  }

  // HF tokenizers' Word::merge_all: repeatedly apply the lowest-ranked merge (leftmost on ties),
  // skipping queue entries that went stale.
  void BpeUncached(std::string_view piece, std::vector<int64_t>* out) const {
    struct Symbol {
      int32_t c;
      int32_t prev;
      int32_t next;
      bool alive;
    };
    struct Candidate {
      int32_t rank;
      int32_t pos;
      int32_t result;
    };
    struct Later {
      bool operator()(const Candidate& a, const Candidate& b) const {
        return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
      }
    };
    const int32_t n = static_cast<int32_t>(piece.size());
    std::vector<Symbol> symbols(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) {
      const unsigned char b = static_cast<unsigned char>(piece[static_cast<size_t>(i)]);
      symbols[i] = {i + 1 == n ? byte_symbol_eow[b] : byte_symbol[b], i - 1, i + 1 == n ? -1 : i + 1,
                    true};
    }
    std::priority_queue<Candidate, std::vector<Candidate>, Later> queue;
    for (int32_t i = 0; i + 1 < n; ++i) {
      if (const MergeInfo* m = FindMerge(symbols[i].c, symbols[i + 1].c)) {
        queue.push({m->rank, i, m->result});
      }
    }
    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& cur = symbols[top.pos];
      if (!cur.alive || cur.next < 0) continue;
      const int32_t next_pos = cur.next;
      const Symbol right = symbols[next_pos];
      const MergeInfo* m = FindMerge(cur.c, right.c);
      if (m == nullptr || m->result != top.result) continue;  // stale entry
      cur.c = top.result;
      cur.next = right.next;
      symbols[next_pos].alive = false;
      if (right.next >= 0) symbols[right.next].prev = top.pos;
      if (cur.prev >= 0) {
        if (const MergeInfo* pm = FindMerge(symbols[cur.prev].c, cur.c)) {
          queue.push({pm->rank, cur.prev, pm->result});
        }
      }
      if (cur.next >= 0) {
        if (const MergeInfo* nm = FindMerge(cur.c, symbols[cur.next].c)) {
          queue.push({nm->rank, top.pos, nm->result});
        }
      }
    }
    for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = symbols[i].next) {
      const int32_t c = symbols[i].c;
      const int64_t id = c >= 0 ? symbol_vocab_id[c] : -1;
      out->push_back(id >= 0 ? id : unk);
    }
  }

  void Bpe(const std::string& piece, std::vector<int64_t>* out) const {
    if (piece.empty()) return;
    if (piece.size() > kMaxCachedWordBytes) {
      BpeUncached(piece, out);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(cache_mu);
      auto it = cache.find(piece);
      if (it != cache.end()) {
        out->insert(out->end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int64_t> ids;
    BpeUncached(piece, &ids);
    out->insert(out->end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mu);
    if (cache.size() >= kCacheCapacity) cache.clear();
    cache.emplace(piece, std::move(ids));
  }

  void EncodeSegment(std::u32string_view segment, std::vector<int64_t>* out) const {
    if (segment.empty()) return;
    const std::u32string normalized = NormalizeClip(segment);
    if (rules == TokenizerRules::kTransformers) {
      for (const std::string& piece : PreTokenizeClip(normalized)) Bpe(piece, out);
      return;
    }
    // OpenAI's pattern matches the two special tokens itself, and its bpe() cache maps them to
    // their own ids.
    for (const std::string& piece : PreTokenizeClip(normalized, /*gpt2_split=*/false)) {
      if (piece == "<|startoftext|>") {
        out->push_back(bos);
      } else if (piece == "<|endoftext|>") {
        out->push_back(eos);
      } else {
        Bpe(piece, out);
      }
    }
  }
};

ClipTokenizer::ClipTokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<ClipTokenizer> ClipTokenizer::Load(const std::string& tokenizer_dir, TokenizerRules rules) {
  // Every JSON access below is type-checked first; this is a backstop (allocation failures, or a
  // JSON library exception that slipped through) so that a bad file can never throw out of here.
  try {
    return LoadUnchecked(tokenizer_dir, rules);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("tokenizer: loading ", tokenizer_dir, " failed: ", e.what()));
  }
}

absl::StatusOr<ClipTokenizer> ClipTokenizer::LoadUnchecked(const std::string& tokenizer_dir,
                                                           TokenizerRules rules) {
  const fs::path dir(tokenizer_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("tokenizer: directory ", tokenizer_dir, " does not exist"));
  }
  auto impl = std::make_shared<Impl>();
  impl->rules = rules;

  // Vocabulary, merges and added tokens.
  Merges merges;
  std::vector<AddedToken> added_tokens;
  const fs::path tokenizer_json = dir / "tokenizer.json";
  if (fs::exists(tokenizer_json, ec)) {
    VQD_ASSIGN_OR_RETURN(Json json, ReadJson(tokenizer_json));
    if (!json.is_object() || !json.contains("model") || !json["model"].is_object()) {
      return FileError(tokenizer_json, "key \"model\" missing or not an object");
    }
    const Json& model = json["model"];
    if (model.contains("type") && model["type"] != "BPE") {
      return FileError(tokenizer_json, "model.type is not \"BPE\"");
    }
    if (model.contains("end_of_word_suffix") && !model["end_of_word_suffix"].is_null() &&
        model["end_of_word_suffix"] != std::string(kEndOfWord)) {
      return FileError(tokenizer_json, "model.end_of_word_suffix is not \"</w>\"");
    }
    if (!model.contains("vocab")) return FileError(tokenizer_json, "key \"model.vocab\" missing");
    if (!model.contains("merges")) return FileError(tokenizer_json, "key \"model.merges\" missing");
    VQD_ASSIGN_OR_RETURN(impl->vocab, ParseVocab(model["vocab"], tokenizer_json, "model.vocab"));
    VQD_ASSIGN_OR_RETURN(merges, ParseMergesJson(model["merges"], tokenizer_json));
    if (json.contains("added_tokens")) {
      VQD_ASSIGN_OR_RETURN(added_tokens, ParseAddedTokens(json["added_tokens"], tokenizer_json));
    }
  } else {
    const fs::path vocab_path = dir / "vocab.json";
    const fs::path merges_path = dir / "merges.txt";
    VQD_ASSIGN_OR_RETURN(Json vocab_json, ReadJson(vocab_path));
    VQD_ASSIGN_OR_RETURN(impl->vocab, ParseVocab(vocab_json, vocab_path, "the vocabulary"));
    VQD_ASSIGN_OR_RETURN(std::string merges_text, ReadFileLimited(merges_path));
    VQD_ASSIGN_OR_RETURN(merges, ParseMergesTxt(merges_text, merges_path));
  }

  // Special tokens and the length: special_tokens_map.json, when present, overrides the config.
  const fs::path config_path = dir / "tokenizer_config.json";
  VQD_ASSIGN_OR_RETURN(Json config, ReadJson(config_path));
  if (!config.is_object()) return FileError(config_path, "not a JSON object");
  const fs::path map_path = dir / "special_tokens_map.json";
  Json special_map = Json::object();
  if (fs::exists(map_path, ec)) {
    VQD_ASSIGN_OR_RETURN(special_map, ReadJson(map_path));
    if (!special_map.is_object()) return FileError(map_path, "not a JSON object");
  }

  for (const AddedToken& t : added_tokens) {
    impl->added[t.content] = t.id;
    if (t.special) impl->special_ids.insert(t.id);
  }
  auto token_id = [&](const std::string& content) -> std::optional<int64_t> {
    if (auto it = impl->added.find(content); it != impl->added.end()) return it->second;
    if (auto it = impl->vocab.find(content); it != impl->vocab.end()) return it->second;
    return std::nullopt;
  };
  auto special = [&](const char* key) -> absl::StatusOr<int64_t> {
    std::string content;
    fs::path source;
    if (special_map.contains(key) && !special_map[key].is_null()) {
      source = map_path;
      VQD_ASSIGN_OR_RETURN(content, SpecialTokenContent(special_map[key], map_path, key));
    } else if (config.contains(key) && !config[key].is_null()) {
      source = config_path;
      VQD_ASSIGN_OR_RETURN(content, SpecialTokenContent(config[key], config_path, key));
    } else {
      return FileError(config_path, absl::StrCat("key \"", key, "\" missing (and not in ",
                                                 map_path.filename().string(), ")"));
    }
    std::optional<int64_t> id = token_id(content);
    if (!id) {
      return FileError(source, absl::StrCat("\"", key, "\" = \"", content,
                                            "\" is not in the vocabulary"));
    }
    impl->AddSplitToken(content, *id);
    impl->special_ids.insert(*id);
    return *id;
  };
  VQD_ASSIGN_OR_RETURN(impl->bos, special("bos_token"));
  VQD_ASSIGN_OR_RETURN(impl->eos, special("eos_token"));
  VQD_ASSIGN_OR_RETURN(impl->unk, special("unk_token"));
  VQD_ASSIGN_OR_RETURN(impl->pad, special("pad_token"));
  for (const AddedToken& t : added_tokens) impl->AddSplitToken(t.content, t.id);
  impl->BuildSplitIndex();

  if (config.contains("model_max_length") && !config["model_max_length"].is_null()) {
    const Json& v = config["model_max_length"];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxModelMaxLength) {
      return FileError(config_path, absl::StrCat("\"model_max_length\" must be an integer in [1, ",
                                                 kMaxModelMaxLength, "]"));
    }
    impl->max_length = v.get<int64_t>();
  }

  // Decoding table and size.
  impl->id_to_token.reserve(impl->vocab.size() + added_tokens.size());
  for (const auto& [token, id] : impl->vocab) {
    impl->id_to_token.emplace(id, token);
    impl->vocab_size = std::max(impl->vocab_size, id + 1);
  }
  for (const AddedToken& t : added_tokens) {
    impl->id_to_token[t.id] = t.content;
    impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
  }

  // BPE tables. As in HF (and OpenAI's dict), a repeated merge keeps its last rank.
  impl->symbol_ids.reserve(impl->vocab.size() + merges.size());
  impl->symbol_vocab_id.reserve(impl->vocab.size() + merges.size());
  const auto& byte_chars = ByteToUnicode();
  for (int b = 0; b < 256; ++b) {
    const std::string plain = byte_chars[b];
    const std::string eow = plain + std::string(kEndOfWord);
    impl->byte_symbol[b] = impl->vocab.count(plain) ? impl->Intern(plain) : -1;
    impl->byte_symbol_eow[b] = impl->vocab.count(eow) ? impl->Intern(eow) : -1;
  }
  impl->merges.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const int32_t left = impl->Intern(a);
    const int32_t right = impl->Intern(b);
    const int32_t result = impl->Intern(a + b);
    impl->merges[Impl::PairKey(left, right)] = {static_cast<int32_t>(rank), result};
  }
  return ClipTokenizer(std::move(impl));
}

std::vector<int64_t> ClipTokenizer::Encode(std::string_view text) const {
  const Impl& impl = *impl_;
  if (impl.rules == TokenizerRules::kOpenAi) {
    std::vector<int64_t> ids = {impl.bos};
    impl.EncodeSegment(DecodeUtf8Lossy(OpenAiBasicClean(text)), &ids);
    ids.push_back(impl.eos);
    return ids;
  }
  const std::u32string u = DecodeUtf8Lossy(text);
  std::vector<int64_t> ids;
  ids.reserve(u.size() / 3 + 2);
  ids.push_back(impl.bos);
  size_t segment_start = 0;
  size_t pos = 0;
  while (pos < u.size()) {
    const Impl::SplitToken* token = impl.MatchSplitToken(u, pos);
    if (token == nullptr) {
      ++pos;
      continue;
    }
    impl.EncodeSegment(std::u32string_view(u).substr(segment_start, pos - segment_start), &ids);
    ids.push_back(token->id);
    pos += token->content.size();
    segment_start = pos;
  }
  impl.EncodeSegment(std::u32string_view(u).substr(segment_start), &ids);
  ids.push_back(impl.eos);
  return ids;
}

std::vector<int64_t> ClipTokenizer::EncodeToLength(std::string_view text,
                                                   int64_t* untruncated_length) const {
  std::vector<int64_t> ids = Encode(text);
  if (untruncated_length != nullptr) *untruncated_length = static_cast<int64_t>(ids.size());
  const size_t length = static_cast<size_t>(impl_->max_length);
  if (ids.size() > length) {
    // transformers 5 truncates the tokens before its post-processor adds bos/eos, so a long prompt
    // keeps its eos (the parity goldens, made with transformers 5.17, show it). The pipeline's own
    // slice to model_max_length then has nothing left to cut.
    ids.resize(length);
    if (length >= 2) ids.back() = impl_->eos;
  } else {
    ids.resize(length, impl_->pad);
  }
  return ids;
}

std::string ClipTokenizer::Decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const Impl& impl = *impl_;
  std::string bytes;
  for (int64_t id : ids) {
    if (skip_special_tokens && impl.special_ids.count(id)) continue;
    auto it = impl.id_to_token.find(id);
    if (it == impl.id_to_token.end()) {
      bytes += "\xEF\xBF\xBD";
      continue;
    }
    std::string_view token = it->second;
    const bool end_of_word =
        token.size() >= kEndOfWord.size() &&
        token.substr(token.size() - kEndOfWord.size()) == kEndOfWord;
    if (end_of_word) token.remove_suffix(kEndOfWord.size());
    bytes += ByteLevelDecode(token);
    if (end_of_word) bytes.push_back(' ');
  }
  std::string text = EncodeUtf8(DecodeUtf8Lossy(bytes));
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

int64_t ClipTokenizer::bos_id() const { return impl_->bos; }
int64_t ClipTokenizer::eos_id() const { return impl_->eos; }
int64_t ClipTokenizer::pad_id() const { return impl_->pad; }
int64_t ClipTokenizer::unk_id() const { return impl_->unk; }
int64_t ClipTokenizer::max_length() const { return impl_->max_length; }
int64_t ClipTokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int64_t> ClipTokenizer::TokenToId(std::string_view token) const {
  const std::string key(token);
  if (auto it = impl_->added.find(key); it != impl_->added.end()) return it->second;
  if (auto it = impl_->vocab.find(key); it != impl_->vocab.end()) return it->second;
  return std::nullopt;
}

std::optional<std::string> ClipTokenizer::IdToToken(int64_t id) const {
  auto it = impl_->id_to_token.find(id);
  if (it == impl_->id_to_token.end()) return std::nullopt;
  return it->second;
}

}  // namespace vqd::text
