#include "model/vq_model.h"

#include "absl/strings/str_replace.h"
#include "absl/strings/match.h"

namespace vqd::model {

VqModelImpl::VqModelImpl(const VqModelConfig& c, const nn::TensorPlacement& placement) : config_(c) {
  encoder = register_module("encoder", VaeEncoder(c, placement));
  quant_conv = register_module("quant_conv", nn::Conv2d(c.latent_channels, c.vq_embed_dim, 1, 1, 0, placement));
  quantize = register_module("quantize", VectorQuantizer(c.num_vq_embeddings, c.vq_embed_dim, placement));
  post_quant_conv = register_module("post_quant_conv", nn::Conv2d(c.vq_embed_dim, c.latent_channels, 1, 1, 0, placement));
  decoder = register_module("decoder", VaeDecoder(c, placement));
}

torch::Tensor VqModelImpl::Decode(const torch::Tensor& codebook_vectors) {
  return decoder(post_quant_conv(codebook_vectors));
}

torch::Tensor VqModelImpl::EncodeLatents(const torch::Tensor& image) { return quant_conv(encoder(image)); }

std::string RenameLegacyVaeKey(const std::string& key) {
  if (!absl::StrContains(key, ".attentions.")) return key;
  return absl::StrReplaceAll(key, {{".query.", ".to_q."},
                                   {".key.", ".to_k."},
                                   {".value.", ".to_v."},
                                   {".proj_attn.", ".to_out.0."}});
}

}  // namespace vqd::model
