#include "convert/official_weights.h"

#include <regex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "diffusion/official_sampling.h"

namespace vqd::convert {
namespace {

// A renaming rule: keys matching `pattern` become `format` (regex_replace syntax); an empty format
// drops the key.
struct Rule {
  std::regex pattern;
  std::string format;
};

Rule R(const char* pattern, const char* format) { return {std::regex(pattern), format}; }

absl::StatusOr<io::TensorMap> Rename(const io::TensorMap& in, const std::vector<Rule>& rules, const std::string& what) {
  io::TensorMap out;
  std::vector<std::string> unknown;
  for (const auto& [key, tensor] : in) {
    bool matched = false;
    for (const Rule& rule : rules) {
      if (!std::regex_match(key, rule.pattern)) continue;
      matched = true;
      if (!rule.format.empty()) out[std::regex_replace(key, rule.pattern, rule.format)] = tensor;
      break;
    }
    if (!matched) unknown.push_back(key);
  }
  if (!unknown.empty()) {
    if (unknown.size() > 8) unknown.resize(8);
    return absl::InvalidArgumentError(absl::StrCat(what, ": unknown tensors (", absl::StrJoin(unknown, ", "),
                                                   "): not the architecture this converter knows"));
  }
  return out;
}

const char* kAttentionNames[][2] = {{"query", "to_q"}, {"key", "to_k"}, {"value", "to_v"}, {"proj", "to_out.0"}};

}  // namespace

absl::StatusOr<DiffusionTransformerParts> SplitDiffusionTransformer(const io::TensorMap& state_dict,
                                                                    const std::string& source) {
  DiffusionTransformerParts parts;
  const auto& schedule_names = diffusion::OfficialSchedule::BufferNames();
  std::vector<std::string> unknown;
  for (const auto& [key, tensor] : state_dict) {
    if (absl::StartsWith(key, "transformer.")) {
      parts.transformer[key] = tensor;
    } else if (absl::StartsWith(key, "condition_emb.")) {
      parts.condition_emb[key.substr(std::string("condition_emb.").size())] = tensor;
    } else if (std::find(schedule_names.begin(), schedule_names.end(), key) != schedule_names.end()) {
      parts.schedule[key] = tensor;
    } else if (key == "empty_text_embed") {
      parts.empty_text_embed = tensor;
    } else if (key != "Lt_history" && key != "Lt_count") {  // training statistics
      unknown.push_back(key);
    }
  }
  if (!unknown.empty()) {
    if (unknown.size() > 8) unknown.resize(8);
    return absl::InvalidArgumentError(absl::StrCat(source, ": unknown DiffusionTransformer tensors (",
                                                   absl::StrJoin(unknown, ", "), ")"));
  }
  if (parts.transformer.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": no transformer.* tensors: not a VQ-Diffusion checkpoint"));
  }
  return parts;
}

absl::StatusOr<io::TensorMap> TextTransformerWeights(const io::TensorMap& transformer) {
  std::vector<Rule> rules = {
      R(R"(transformer\.content_emb\.(emb|height_emb|width_emb)\.weight)", "latent_image_embedding.$1.weight"),
      R(R"(transformer\.blocks\.(\d+)\.ln1\.(emb\.weight|linear\.weight|linear\.bias))", "transformer_blocks.$1.norm1.$2"),
      R(R"(transformer\.blocks\.(\d+)\.ln1_1\.(emb\.weight|linear\.weight|linear\.bias))", "transformer_blocks.$1.norm2.$2"),
      R(R"(transformer\.blocks\.(\d+)\.ln2\.(weight|bias))", "transformer_blocks.$1.norm3.$2"),
      R(R"(transformer\.blocks\.(\d+)\.attn2\.mask)", ""),  // registered, never used
      R(R"(transformer\.blocks\.(\d+)\.mlp\.0\.(weight|bias))", "transformer_blocks.$1.ff.net.0.proj.$2"),
      R(R"(transformer\.blocks\.(\d+)\.mlp\.2\.(weight|bias))", "transformer_blocks.$1.ff.net.2.$2"),
      R(R"(transformer\.to_logits\.0\.(weight|bias))", "norm_out.$1"),
      R(R"(transformer\.to_logits\.1\.(weight|bias))", "out.$1"),
  };
  for (const auto& [from, to] : kAttentionNames) {
    rules.push_back({std::regex(absl::StrCat(R"(transformer\.blocks\.(\d+)\.(attn1|attn2)\.)", from, R"(\.(weight|bias))")),
                     absl::StrCat("transformer_blocks.$1.$2.", to, ".$3")});
  }
  return Rename(transformer, rules, "text transformer");
}

absl::StatusOr<io::TensorMap> ClassTransformerWeights(const io::TensorMap& transformer) {
  std::vector<Rule> rules = {
      R(R"(transformer\.content_emb\.(emb|height_emb|width_emb)\.weight)", "latent_image_embedding.$1.weight"),
      R(R"(transformer\.blocks\.(\d+)\.ln1\.(emb\.weight|linear\.weight|linear\.bias))", "transformer_blocks.$1.norm1.$2"),
      R(R"(transformer\.blocks\.(\d+)\.ln2\.(emb\.weight|linear\.weight|linear\.bias))",
        "transformer_blocks.$1.norm_class.$2"),
      R(R"(transformer\.blocks\.(\d+)\.mlp\.(conv1|conv2)\.(weight|bias))", "transformer_blocks.$1.ff.$2.$3"),
      R(R"(transformer\.to_logits\.0\.(weight|bias))", "norm_out.$1"),
      R(R"(transformer\.to_logits\.1\.(weight|bias))", "out.$1"),
  };
  for (const auto& [from, to] : kAttentionNames) {
    rules.push_back({std::regex(absl::StrCat(R"(transformer\.blocks\.(\d+)\.attn\.)", from, R"(\.(weight|bias))")),
                     absl::StrCat("transformer_blocks.$1.attn1.", to, ".$2")});
  }
  return Rename(transformer, rules, "class transformer");
}

absl::StatusOr<io::TensorMap> ClipTextWeights(const io::TensorMap& condition_emb) {
  const std::vector<Rule> rules = {
      R(R"(token_embedding\.weight)", "text_model.embeddings.token_embedding.weight"),
      R(R"(positional_embedding)", "text_model.embeddings.position_embedding.weight"),
      R(R"(transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias))", "in_proj.$1.$2"),  // split below
      R(R"(transformer\.resblocks\.(\d+)\.attn\.out_proj\.(weight|bias))", "text_model.encoder.layers.$1.self_attn.out_proj.$2"),
      R(R"(transformer\.resblocks\.(\d+)\.ln_1\.(weight|bias))", "text_model.encoder.layers.$1.layer_norm1.$2"),
      R(R"(transformer\.resblocks\.(\d+)\.ln_2\.(weight|bias))", "text_model.encoder.layers.$1.layer_norm2.$2"),
      R(R"(transformer\.resblocks\.(\d+)\.mlp\.c_fc\.(weight|bias))", "text_model.encoder.layers.$1.mlp.fc1.$2"),
      R(R"(transformer\.resblocks\.(\d+)\.mlp\.c_proj\.(weight|bias))", "text_model.encoder.layers.$1.mlp.fc2.$2"),
      R(R"(ln_final\.(weight|bias))", "text_model.final_layer_norm.$1"),
      R(R"(text_projection)", ""),  // pick_last_embedding is false: never used
  };
  VQD_ASSIGN_OR_RETURN(io::TensorMap renamed, Rename(condition_emb, rules, "CLIP text tower"));
  io::TensorMap out;
  const std::regex in_proj(R"(in_proj\.(\d+)\.(weight|bias))");
  for (auto& [key, tensor] : renamed) {
    std::smatch m;
    if (!std::regex_match(key, m, in_proj)) {
      out[key] = tensor;
      continue;
    }
    if (tensor.size(0) % 3 != 0) {
      return absl::InvalidArgumentError(absl::StrCat("CLIP text tower: in_proj of layer ", m[1].str(), " has ",
                                                     tensor.size(0), " rows, not 3 x width"));
    }
    // nn.MultiheadAttention packs the projections as [q; k; v].
    const std::vector<torch::Tensor> qkv = tensor.chunk(3, 0);
    const char* names[] = {"q_proj", "k_proj", "v_proj"};
    for (int i = 0; i < 3; ++i) {
      out[absl::StrCat("text_model.encoder.layers.", m[1].str(), ".self_attn.", names[i], ".", m[2].str())] =
          qkv[i].contiguous();
    }
  }
  return out;
}

absl::StatusOr<torch::Tensor> QuantizeToFull(const torch::Tensor& full_to_quantize, int64_t shrunk_codes,
                                             const std::string& source) {
  if (full_to_quantize.dim() != 1 || full_to_quantize.scalar_type() != torch::kInt64) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": expected a 1-D int64 full_to_quantize table, got ",
                                                   DtypeName(full_to_quantize.scalar_type()),
                                                   ShapeString(full_to_quantize.sizes())));
  }
  const torch::Tensor table = full_to_quantize.contiguous();
  const int64_t* f2q = table.data_ptr<int64_t>();
  std::vector<int64_t> q2f(static_cast<size_t>(shrunk_codes), -1);
  for (int64_t full = 0; full < table.numel(); ++full) {
    const int64_t q = f2q[full];
    if (q < 0 || q >= shrunk_codes) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": full code ", full, " maps to ", q,
                                                     ", outside the shrunk codebook [0, ", shrunk_codes, ")"));
    }
    if (q2f[static_cast<size_t>(q)] == -1) q2f[static_cast<size_t>(q)] = full;
  }
  for (int64_t q = 0; q < shrunk_codes; ++q) {
    if (q2f[static_cast<size_t>(q)] == -1) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": no full code maps to shrunk code ", q));
    }
  }
  return torch::tensor(q2f, torch::kInt64);
}

absl::StatusOr<io::TensorMap> VqganWeights(const io::TensorMap& model_state_dict, const TamingVqganConfig& config,
                                           const torch::Tensor& quantize_to_full) {
  const int64_t levels = static_cast<int64_t>(config.ch_mult.size());
  const std::string codebook_key = config.gumbel ? "quantize.embed.weight" : "quantize.embedding.weight";
  io::TensorMap out;
  std::vector<std::string> unknown;
  const std::regex block(R"((encoder|decoder)\.(down|up)\.(\d+)\.block\.(\d+)\.(.+))");
  const std::regex attn(R"((encoder|decoder)\.(down|up)\.(\d+)\.attn\.(\d+)\.(norm|q|k|v|proj_out)\.(weight|bias))");
  const std::regex resample(R"((encoder|decoder)\.(down|up)\.(\d+)\.(downsample|upsample)\.conv\.(weight|bias))");
  const std::regex mid(R"((encoder|decoder)\.mid\.(block_1|block_2|attn_1)\.(.+))");
  const std::regex mid_attn(R"((norm|q|k|v|proj_out)\.(weight|bias))");
  const std::regex ends(R"((encoder|decoder)\.(conv_in|conv_out|norm_out)\.(weight|bias))");
  auto attention_name = [](const std::string& part) {
    if (part == "norm") return std::string("group_norm");
    if (part == "proj_out") return std::string("to_out.0");
    return "to_" + part;
  };
  // 1x1 convolutions become the linear layers diffusers' attention uses.
  auto attention_tensor = [](const torch::Tensor& t) { return t.dim() == 4 ? t.flatten(1).contiguous() : t; };
  auto block_index = [&](const std::string& side, const std::string& level) {
    const int64_t i = std::stoll(level);
    return side == "up" ? levels - 1 - i : i;  // diffusers orders the decoder's blocks from the bottom
  };
  for (const auto& [full_key, tensor] : model_state_dict) {
    std::string key;
    if (absl::StartsWith(full_key, "content_codec.enc.")) {
      key = full_key.substr(std::string("content_codec.enc.").size());
      if (absl::StartsWith(key, "quantize.")) continue;  // the same module as dec.quantize
    } else if (absl::StartsWith(full_key, "content_codec.dec.")) {
      key = full_key.substr(std::string("content_codec.dec.").size());
    } else {
      continue;  // not the codec
    }
    std::smatch m;
    const std::string blocks = std::string(key).find("encoder") == 0 ? "down_blocks" : "up_blocks";
    if (key == codebook_key) {
      if (tensor.dim() != 2 || tensor.size(0) != config.n_embed || tensor.size(1) != config.embed_dim) {
        return absl::InvalidArgumentError(absl::StrCat("VQGAN codebook ", full_key, " is ", ShapeString(tensor.sizes()),
                                                       ", the VQGAN config says [", config.n_embed, ", ",
                                                       config.embed_dim, "]"));
      }
      if (quantize_to_full.max().item<int64_t>() >= tensor.size(0)) {
        return absl::InvalidArgumentError(absl::StrCat("the shrink table names full code ",
                                                       quantize_to_full.max().item<int64_t>(), ", the codebook has ",
                                                       tensor.size(0)));
      }
      out["quantize.embedding.weight"] = tensor.index_select(0, quantize_to_full).contiguous();
    } else if (config.gumbel && absl::StartsWith(key, "quantize.proj.")) {
      // The Gumbel encoder's logits: diffusers' VQModel has no place for them; decoding needs none.
    } else if (key == "quant_conv.weight" || key == "quant_conv.bias" || key == "post_quant_conv.weight" ||
               key == "post_quant_conv.bias") {
      out[key] = tensor;
    } else if (std::regex_match(key, m, block)) {
      const std::string part = m[5].str() == "nin_shortcut.weight"  ? "conv_shortcut.weight"
                               : m[5].str() == "nin_shortcut.bias" ? "conv_shortcut.bias"
                                                                     : m[5].str();
      out[absl::StrCat(m[1].str(), ".", blocks, ".", block_index(m[2].str(), m[3].str()), ".resnets.", m[4].str(), ".",
                       part)] = tensor;
    } else if (std::regex_match(key, m, attn)) {
      out[absl::StrCat(m[1].str(), ".", blocks, ".", block_index(m[2].str(), m[3].str()), ".attentions.", m[4].str(),
                       ".", attention_name(m[5].str()), ".", m[6].str())] = attention_tensor(tensor);
    } else if (std::regex_match(key, m, resample)) {
      out[absl::StrCat(m[1].str(), ".", blocks, ".", block_index(m[2].str(), m[3].str()), ".",
                       m[4].str() == "downsample" ? "downsamplers" : "upsamplers", ".0.conv.", m[5].str())] = tensor;
    } else if (std::regex_match(key, m, mid)) {
      const std::string rest = m[3].str();
      std::smatch a;
      if (m[2].str() == "attn_1" && std::regex_match(rest, a, mid_attn)) {
        out[absl::StrCat(m[1].str(), ".mid_block.attentions.0.", attention_name(a[1].str()), ".", a[2].str())] =
            attention_tensor(tensor);
      } else if (m[2].str() != "attn_1") {
        out[absl::StrCat(m[1].str(), ".mid_block.resnets.", m[2].str() == "block_1" ? "0" : "1", ".", rest)] = tensor;
      } else {
        unknown.push_back(full_key);
      }
    } else if (std::regex_match(key, m, ends)) {
      out[absl::StrCat(m[1].str(), ".", m[2].str() == "norm_out" ? "conv_norm_out" : m[2].str(), ".", m[3].str())] =
          tensor;
    } else {
      unknown.push_back(full_key);
    }
  }
  if (!unknown.empty()) {
    if (unknown.size() > 8) unknown.resize(8);
    return absl::InvalidArgumentError(absl::StrCat("VQGAN: unknown tensors (", absl::StrJoin(unknown, ", "), ")"));
  }
  if (out.count("quantize.embedding.weight") == 0) {
    return absl::InvalidArgumentError(absl::StrCat("VQGAN: no codebook content_codec.dec.", codebook_key,
                                                   " (is the VQGAN config's model.target right?)"));
  }
  return out;
}

}  // namespace vqd::convert
