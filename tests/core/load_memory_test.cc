// Loading holds the weights once: reading a weights file into a module's parameters (what
// pipeline::LoadComponentWeights does) must not keep the file's tensors resident next to the
// parameters they were copied into. The peak resident memory during the load (VmHWM, reset just
// before through /proc/self/clear_refs) may exceed the memory before it by at most a quarter of the
// weights; holding the file's tensors until the end of the load costs all of them. No timing is
// measured, so a busy machine does not matter.
#include <gtest/gtest.h>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <string>

#include "base/process_memory.h"
#include "absl/strings/str_cat.h"
#include "io/file_util.h"
#include "io/safetensors.h"
#include "io/test_util.h"
#include "io/weights_file.h"
#include "nn/state_dict.h"

namespace vqd {
namespace {

using io::testing_util::MakeTempDir;
using io::testing_util::PickleWriter;

constexpr int kTensors = 24;
constexpr int64_t kRows = 4096, kCols = 1024;  // 16 MiB of float32 each, 384 MiB in all
constexpr int64_t kWeightBytes = kTensors * kRows * kCols * 4;

std::string Name(int i) { return absl::StrCat(i < 10 ? "w0" : "w", i); }  // sorted as stored

// Distinct values per element and per tensor, cheap to build again for the comparison.
torch::Tensor Expected(int i) {
  return torch::arange(kRows * kCols, torch::kFloat32).mul_(static_cast<float>(i + 1)).view({kRows, kCols});
}

struct Weights : torch::nn::Module {
  Weights() {
    // zeros writes every page: the parameters are resident before the load, as in the pipeline.
    for (int i = 0; i < kTensors; ++i) register_parameter(Name(i), torch::zeros({kRows, kCols}), false);
  }
};


// Resets VmHWM to the current RSS (Linux 4.0+); false where /proc does not allow it.
bool ResetPeak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out) && vqd::ProcessStatusBytes("VmHWM") <= vqd::ProcessStatusBytes("VmRSS") + (4 << 20);
}

std::string WriteSafetensorsFile(const std::string& dir) {
  const std::string path = dir + "/model.safetensors";
  io::TensorMap tensors;
  for (int i = 0; i < kTensors; ++i) tensors[Name(i)] = Expected(i);
  EXPECT_TRUE(io::WriteSafetensors(path, tensors).ok());
  return path;
}

// A torch.save zip: one storage record per tensor, written by libtorch's own writer (stored,
// aligned, as torch.save writes them).
std::string WriteTorchBinFile(const std::string& dir) {
  PickleWriter w;
  w.Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
  for (int i = 0; i < kTensors; ++i) {
    w.Str(Name(i)).Tensor("FloatStorage", std::to_string(i), kRows * kCols, 0, {kRows, kCols}, {kCols, 1});
  }
  w.SetItems().Stop();
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
    writer.writeRecord("data.pkl", w.bytes().data(), w.bytes().size());
    for (int i = 0; i < kTensors; ++i) {
      const torch::Tensor t = Expected(i);
      writer.writeRecord(absl::StrCat("data/", i), t.data_ptr(), kRows * kCols * 4);
    }
    writer.writeEndOfFile();
  }
  const std::string path = dir + "/pytorch_model.bin";
  EXPECT_TRUE(io::WriteFile(path, bytes).ok());
  return path;
}

void ExpectLoadHoldsWeightsOnce(const std::string& path) {
  Weights module;
  if (!ResetPeak()) GTEST_SKIP() << "/proc/self/clear_refs cannot reset VmHWM here: peak memory NOT tested";
  const int64_t before = vqd::ProcessStatusBytes("VmRSS");
  {
    absl::StatusOr<io::TensorMap> tensors = io::ReadWeightsFile(path);
    ASSERT_TRUE(tensors.ok()) << tensors.status();
    nn::LoadOptions options;
    options.component = "test";
    options.file = path;
    const absl::Status status = nn::LoadStateDict(module, std::move(*tensors), options);
    ASSERT_TRUE(status.ok()) << status;
  }
  const int64_t peak = vqd::ProcessStatusBytes("VmHWM");
  const int64_t after = vqd::ProcessStatusBytes("VmRSS");
  const double mib = 1024.0 * 1024.0;
  std::cout << path << ": " << kWeightBytes / mib << " MiB of weights, RSS before the load " << before / mib
            << " MiB, peak " << peak / mib << " MiB (+" << (peak - before) / mib << "), after " << after / mib
            << " MiB\n";
  EXPECT_LE(peak - before, kWeightBytes / 4)
      << "loading held " << (peak - before) / mib << " MiB beyond the parameters, more than a quarter of the "
      << kWeightBytes / mib << " MiB of weights";
  // Bit-identical to the file.
  for (const auto& item : module.named_parameters()) {
    const int i = std::stoi(item.key().substr(1));
    EXPECT_TRUE(torch::equal(item.value(), Expected(i))) << item.key();
  }
}

TEST(LoadMemoryTest, SafetensorsLoadHoldsTheWeightsOnce) {
  const std::string dir = MakeTempDir();
  ExpectLoadHoldsWeightsOnce(WriteSafetensorsFile(dir));
}

TEST(LoadMemoryTest, TorchBinLoadHoldsTheWeightsOnce) {
  const std::string dir = MakeTempDir();
  ExpectLoadHoldsWeightsOnce(WriteTorchBinFile(dir));
}

}  // namespace
}  // namespace vqd
