#include "common/parity_data.h"

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "base/torch_util.h"
#include "io/safetensors.h"

namespace vqd::testing {
namespace fs = std::filesystem;

std::optional<std::string> ParityDir() {
  const char* env = std::getenv("VQD_PARITY_DIR");
  const std::string dir = env != nullptr && *env != '\0' ? env : VQD_PARITY_DIR;
  std::error_code ec;
  if (!fs::is_directory(fs::path(dir) / "tiny", ec)) return std::nullopt;
  return dir;
}

std::string TinyPath(const std::string& sub) { return (fs::path(*ParityDir()) / "tiny" / sub).string(); }

namespace {
const io::TensorMap& LoadOnce(const std::string& file, io::TensorMap& storage, std::once_flag& flag) {
  std::call_once(flag, [&] {
    auto loaded = io::ReadSafetensors(TinyPath(file));
    if (!loaded.ok()) throw std::runtime_error(std::string(loaded.status().message()));
    storage = std::move(*loaded);
  });
  return storage;
}
}  // namespace

const io::TensorMap& Goldens() {
  static io::TensorMap storage;
  static std::once_flag flag;
  return LoadOnce("goldens.safetensors", storage, flag);
}

const io::TensorMap& CudaGoldens() {
  static io::TensorMap storage;
  static std::once_flag flag;
  return LoadOnce("goldens_cuda_h100.safetensors", storage, flag);
}

const torch::Tensor& Golden(const std::string& name) {
  const auto& goldens = Goldens();
  auto it = goldens.find(name);
  if (it == goldens.end()) throw std::runtime_error("no golden tensor " + name);
  return it->second;
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU).to(torch::kFloat64) - b.to(torch::kCPU).to(torch::kFloat64)).abs().max().item<double>();
}

::testing::AssertionResult AllClose(const std::string& name, const torch::Tensor& actual, const torch::Tensor& expected,
                                    double atol) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << name << ": shape " << ShapeString(actual.sizes()) << " != expected "
                                         << ShapeString(expected.sizes());
  }
  torch::Tensor a = actual.to(torch::kCPU).to(torch::kFloat64);
  torch::Tensor e = expected.to(torch::kCPU).to(torch::kFloat64);
  if (a.isnan().any().item<bool>()) return ::testing::AssertionFailure() << name << ": has NaN";
  // Equal infinities (truncated entries) compare equal; the rest by absolute difference.
  torch::Tensor same_inf = a.isinf().logical_and(e.isinf()).logical_and(a == e);
  torch::Tensor diff = torch::where(same_inf, torch::zeros_like(a), (a - e).abs());
  const double max_diff = diff.max().item<double>();
  if (!(max_diff <= atol)) {
    return ::testing::AssertionFailure() << name << ": max |actual - expected| = " << max_diff << " > " << atol;
  }
  // VQD_PARITY_VERBOSE=1 prints the tolerance achieved by every comparison.
  if (const char* verbose = std::getenv("VQD_PARITY_VERBOSE"); verbose != nullptr && *verbose != '\0') {
    std::fprintf(stderr, "  %s: max |actual - expected| = %.3g (tolerance %.3g)\n", name.c_str(), max_diff, atol);
  }
  return ::testing::AssertionSuccess() << name << ": max diff " << max_diff;
}

}  // namespace vqd::testing
