#include "diffusion/kernels/posterior_gumbel.h"

#include "diffusion/gumbel_sampler.h"
#include "diffusion/q_posterior.h"
#ifdef VQD_WITH_CUDA
#include "diffusion/kernels/cuda_ops.h"
#endif

namespace vqd::diffusion {

kernels::ScheduleTables TablesOf(const VqSchedule& s) {
  kernels::ScheduleTables tables;
  tables.log_at = s.log_at.data_ptr<float>();
  tables.log_bt = s.log_bt.data_ptr<float>();
  tables.log_ct = s.log_ct.data_ptr<float>();
  tables.log_cumprod_at = s.log_cumprod_at.data_ptr<float>();
  tables.log_cumprod_bt = s.log_cumprod_bt.data_ptr<float>();
  tables.log_cumprod_ct = s.log_cumprod_ct.data_ptr<float>();
  return tables;
}

torch::Tensor SamplePosteriorReference(const VqSchedule& schedule, const torch::Tensor& log_p_x_0,
                                       const torch::Tensor& x_t, const torch::Tensor& t, const torch::Tensor& uniform) {
  return GumbelArgmax(QPosterior(schedule, log_p_x_0, x_t, t), uniform);
}

torch::Tensor SamplePosterior(const VqSchedule& schedule, const torch::Tensor& log_p_x_0, const torch::Tensor& x_t,
                              const torch::Tensor& t, const torch::Tensor& uniform, bool fused) {
  if (fused && log_p_x_0.is_cuda()) {
#ifdef VQD_WITH_CUDA
    TORCH_CHECK(schedule.log_at.device() == log_p_x_0.device(), "SamplePosterior: the schedule is on ",
                schedule.log_at.device(), ", the log-probabilities on ", log_p_x_0.device());
    TORCH_CHECK(log_p_x_0.size(1) == schedule.num_classes, "SamplePosterior: ", log_p_x_0.size(1),
                " classes, the schedule has ", schedule.num_classes);
    const kernels::ScheduleTables tables = TablesOf(schedule);
    return kernels::cuda::GumbelArgmaxColumns(log_p_x_0, x_t, t, uniform, &tables);
#else
    TORCH_CHECK(false, "SamplePosterior: CUDA tensors in a build without CUDA");
#endif
  }
  return SamplePosteriorReference(schedule, log_p_x_0, x_t, t, uniform);
}

torch::Tensor SampleX0(const torch::Tensor& log_p_x_0, const torch::Tensor& uniform, bool fused) {
  if (fused && log_p_x_0.is_cuda()) {
#ifdef VQD_WITH_CUDA
    return kernels::cuda::GumbelArgmaxColumns(log_p_x_0, {}, {}, uniform, nullptr);
#else
    TORCH_CHECK(false, "SampleX0: CUDA tensors in a build without CUDA");
#endif
  }
  return GumbelArgmax(log_p_x_0, uniform);
}

}  // namespace vqd::diffusion
