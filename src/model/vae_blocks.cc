#include "model/vae_blocks.h"

#include <string>

#include "nn/attention_kernel.h"

namespace vqd::model {
namespace {
constexpr double kVaeEps = 1e-6;  // every VAE GroupNorm uses resnet_eps = 1e-6
}

ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t in_channels, int64_t out_channels, int64_t groups,
                                     const nn::TensorPlacement& placement) {
  norm1 = register_module("norm1", nn::GroupNorm(groups, in_channels, kVaeEps, placement));
  conv1 = register_module("conv1", nn::Conv2d(in_channels, out_channels, 3, 1, 1, placement));
  norm2 = register_module("norm2", nn::GroupNorm(groups, out_channels, kVaeEps, placement));
  conv2 = register_module("conv2", nn::Conv2d(out_channels, out_channels, 3, 1, 1, placement));
  if (in_channels != out_channels) {
    conv_shortcut = register_module("conv_shortcut", nn::Conv2d(in_channels, out_channels, 1, 1, 0, placement));
  }
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = conv1(torch::silu(norm1(x)));
  h = conv2(torch::silu(norm2(h)));
  torch::Tensor shortcut = conv_shortcut ? conv_shortcut(x) : x;
  return shortcut + h;
}

SpatialAttentionImpl::SpatialAttentionImpl(int64_t channels, int64_t groups, const nn::TensorPlacement& placement) {
  group_norm = register_module("group_norm", nn::GroupNorm(groups, channels, kVaeEps, placement));
  to_q = register_module("to_q", nn::Linear(channels, channels, true, placement));
  to_k = register_module("to_k", nn::Linear(channels, channels, true, placement));
  to_v = register_module("to_v", nn::Linear(channels, channels, true, placement));
  out_proj_ = nn::Linear(channels, channels, true, placement);
  register_module("to_out", torch::nn::ModuleList(out_proj_));
}

torch::Tensor SpatialAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  torch::Tensor seq = group_norm(x.view({b, c, h * w})).transpose(1, 2);  // [B, HW, C]
  // One head of width C: [B, 1, HW, C].
  torch::Tensor q = to_q(seq).unsqueeze(1), k = to_k(seq).unsqueeze(1), v = to_v(seq).unsqueeze(1);
  torch::Tensor out = nn::ScaledDotProductAttention(q, k, v).squeeze(1).to(q.scalar_type());  // [B, HW, C]
  out = out_proj_(out).transpose(-1, -2).reshape({b, c, h, w});
  return out + x;
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, const nn::TensorPlacement& placement) {
  conv = register_module("conv", nn::Conv2d(channels, channels, 3, 1, 1, placement));
}

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  // Nearest-neighbour upsampling lacks bfloat16 kernels in some versions; diffusers upcasts too.
  torch::Tensor in = x.scalar_type() == torch::kBFloat16 ? x.to(torch::kFloat32) : x;
  torch::Tensor up = F::interpolate(
      in, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest));
  return conv(up.to(x.scalar_type()));
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, const nn::TensorPlacement& placement) {
  conv = register_module("conv", nn::Conv2d(channels, channels, 3, 2, 0, placement));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  return conv(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));
}

MidBlock2DImpl::MidBlock2DImpl(int64_t channels, int64_t groups, bool add_attention,
                               const nn::TensorPlacement& placement) {
  auto resnets = register_module("resnets", torch::nn::ModuleList());
  for (int i = 0; i < 2; ++i) {
    resnets_.push_back(ResnetBlock2D(channels, channels, groups, placement));
    resnets->push_back(resnets_.back());
  }
  if (add_attention) {
    auto attentions = register_module("attentions", torch::nn::ModuleList());
    attentions_.push_back(SpatialAttention(channels, groups, placement));
    attentions->push_back(attentions_.back());
  }
}

torch::Tensor MidBlock2DImpl::forward(torch::Tensor x) {
  x = resnets_[0](x);
  if (!attentions_.empty()) x = attentions_[0](x);
  return resnets_[1](x);
}

EncoderDecoderBlockImpl::EncoderDecoderBlockImpl(int64_t in_channels, int64_t out_channels, int64_t num_layers,
                                                 int64_t groups, bool with_attention, Resample resample,
                                                 const nn::TensorPlacement& placement) {
  auto resnets = register_module("resnets", torch::nn::ModuleList());
  torch::nn::ModuleList attentions{nullptr};
  if (with_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    resnets_.push_back(ResnetBlock2D(i == 0 ? in_channels : out_channels, out_channels, groups, placement));
    resnets->push_back(resnets_.back());
    if (with_attention) {
      attentions_.push_back(SpatialAttention(out_channels, groups, placement));
      attentions->push_back(attentions_.back());
    }
  }
  if (resample == Resample::kDown) {
    downsample_ = Downsample2D(out_channels, placement);
    register_module("downsamplers", torch::nn::ModuleList(downsample_));
  } else if (resample == Resample::kUp) {
    upsample_ = Upsample2D(out_channels, placement);
    register_module("upsamplers", torch::nn::ModuleList(upsample_));
  }
}

torch::Tensor EncoderDecoderBlockImpl::forward(torch::Tensor x) {
  for (size_t i = 0; i < resnets_.size(); ++i) {
    x = resnets_[i](x);
    if (!attentions_.empty()) x = attentions_[i](x);
  }
  if (downsample_) x = downsample_(x);
  if (upsample_) x = upsample_(x);
  return x;
}

}  // namespace vqd::model
