#include "nn/kernels/log_softmax.h"

#ifdef VQD_WITH_CUDA
#include "nn/kernels/cuda_ops.h"
#endif

namespace vqd::nn::kernels {

torch::Tensor LogSoftmaxClassesReference(const torch::Tensor& logits) {
  return torch::log_softmax(logits.to(torch::kFloat64), -1).to(torch::kFloat32);
}

torch::Tensor LogSoftmaxClasses(const torch::Tensor& logits, torch::Tensor out) {
  if (out.defined()) {
    TORCH_CHECK(out.scalar_type() == torch::kFloat32 && out.is_contiguous() && out.sizes() == logits.sizes() &&
                    out.device() == logits.device(),
                "LogSoftmaxClasses: out must be a contiguous float32 ", logits.sizes(), " on ", logits.device());
  }
  if (logits.is_cuda()) {
#ifdef VQD_WITH_CUDA
    if (!out.defined()) out = torch::empty(logits.sizes(), logits.options().dtype(torch::kFloat32));
    cuda::LogSoftmaxLastDim(logits.contiguous(), out);
    return out;
#else
    TORCH_CHECK(false, "LogSoftmaxClasses: CUDA tensors in a build without CUDA");
#endif
  }
  torch::Tensor result = LogSoftmaxClassesReference(logits);
  return out.defined() ? out.copy_(result) : result;
}

}  // namespace vqd::nn::kernels
