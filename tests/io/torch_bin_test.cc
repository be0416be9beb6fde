#include "io/torch_bin.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <map>
#include <set>
#include <string>

#include "io/file_util.h"
#include "io/safetensors.h"
#include "io/weights_file.h"
#include "test_util.h"

namespace vqd::io {
namespace {

using testing_util::MakeTempDir;
using testing_util::PickleWriter;

// A torch.save-style zip ("archive/data.pkl", "archive/data/<key>", "archive/version") written by
// libtorch's own writer.
std::string MakeZip(const std::map<std::string, std::string>& records) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter writer([&out](const void* data, size_t size) {
    out.append(static_cast<const char*>(data), size);
    return size;
  });
  for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
  writer.writeEndOfFile();
  return out;
}

std::string FloatBytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// {"w": 2x3 view of storage 0, "t": its transpose (non-contiguous), "tail": storage 0 from element 4,
//  "h": fp16 storage 1, "p": a Parameter wrapping storage 0}, with _metadata set through BUILD.
std::string GoodPickle() {
  PickleWriter w;
  w.Proto(2).Global("collections", "OrderedDict").Put(0).EmptyTuple().Reduce().Put(1).Mark();
  w.Str("w").Tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  w.Str("t").Tensor("FloatStorage", "0", 6, 0, {3, 2}, {1, 3});
  w.Str("tail").Tensor("FloatStorage", "0", 6, 4, {2}, {1});
  w.Str("h").Tensor("HalfStorage", "1", 2, 0, {2}, {1});
  w.Str("p").Global("torch._utils", "_rebuild_parameter");
  w.Tensor("FloatStorage", "0", 6, 0, {6}, {1}).Bool(true).Get(0).EmptyTuple().Reduce().TupleN(3).Reduce();
  w.Str("e").Tensor("FloatStorage", "2", 0, 0, {0, 5}, {5, 1});
  w.SetItems().EmptyDict().Str("_metadata").Get(0).EmptyTuple().Reduce().SetItem().Build().Stop();
  return w.bytes();
}

std::map<std::string, std::string> GoodRecords() {
  const torch::Tensor half = torch::tensor({0.5f, -3.0f}).to(torch::kFloat16);
  return {{"data.pkl", GoodPickle()},
          {"data/0", FloatBytes({0, 1, 2, 3, 4, 5})},
          {"data/1", std::string(static_cast<const char*>(half.data_ptr()), 4)},
          {"data/2", ""}};
}

TEST(TorchBin, ReadsHandBuiltCheckpoint) {
  absl::StatusOr<TensorMap> tensors = ParseTorchBin(MakeZip(GoodRecords()), "hand.bin");
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  const torch::Tensor base = torch::arange(6, torch::kFloat32);
  EXPECT_EQ(tensors->size(), 6u);
  EXPECT_TRUE(torch::equal(tensors->at("w"), base.reshape({2, 3})));
  EXPECT_TRUE(torch::equal(tensors->at("t"), base.reshape({2, 3}).t()));
  EXPECT_TRUE(torch::equal(tensors->at("tail"), base.slice(0, 4)));
  EXPECT_TRUE(torch::equal(tensors->at("h"), torch::tensor({0.5f, -3.0f}).to(torch::kFloat16)));
  EXPECT_TRUE(torch::equal(tensors->at("p"), base));
  EXPECT_EQ(tensors->at("e").sizes(), (std::vector<int64_t>{0, 5}));
  for (const auto& [name, tensor] : *tensors) {
    EXPECT_TRUE(tensor.is_contiguous()) << name;
    EXPECT_FALSE(tensor.requires_grad()) << name;
  }
}

TEST(TorchBin, ReadsFromAFile) {
  const std::string path = MakeTempDir() + "/model.bin";
  ASSERT_TRUE(WriteFile(path, MakeZip(GoodRecords())).ok());
  absl::StatusOr<TensorMap> tensors = ReadTorchBin(path);
  ASSERT_TRUE(tensors.ok()) << tensors.status();
  EXPECT_EQ(tensors->size(), 6u);
  EXPECT_ERROR(ReadTorchBin(path + ".missing"), absl::StatusCode::kNotFound, "model.bin.missing");
}

// Replaces data.pkl of the good checkpoint by `pickle` and expects an error mentioning `text`.
void ExpectPickleRejected(const std::string& pickle, const std::string& text,
                          std::map<std::string, std::string> records = GoodRecords()) {
  records["data.pkl"] = pickle;
  absl::StatusOr<TensorMap> result = ParseTorchBin(MakeZip(records), "bad.bin");
  ASSERT_FALSE(result.ok()) << "accepted: " << text;
  EXPECT_TRUE(absl::StrContains(result.status().message(), "bad.bin")) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), text)) << result.status() << "\nexpected: " << text;
}

PickleWriter StateDictWith(std::string_view storage_type, std::string_view key, int64_t numel, int64_t offset,
                           std::initializer_list<int64_t> size, std::initializer_list<int64_t> stride) {
  PickleWriter w;
  w.Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Str("x");
  w.Tensor(storage_type, key, numel, offset, size, stride).SetItem().Stop();
  return w;
}

TEST(TorchBin, RejectsForbiddenGlobals) {
  PickleWriter os_system;
  os_system.Proto(2).Global("os", "system").Str("touch /tmp/pwned").TupleN(1).Reduce().Stop();
  ExpectPickleRejected(os_system.bytes(), "forbidden global os.system");

  PickleWriter eval;
  eval.Proto(2)
      .Global("collections", "OrderedDict")
      .EmptyTuple()
      .Reduce()
      .Str("x")
      .Global("builtins", "eval")
      .Str("1")
      .TupleN(1)
      .Reduce()
      .SetItem()
      .Stop();
  ExpectPickleRejected(eval.bytes(), "forbidden global builtins.eval");

  PickleWriter stack_global;
  stack_global.Proto(4).ShortStr("subprocess").ShortStr("Popen").Op(0x93).Stop();
  ExpectPickleRejected(stack_global.bytes(), "forbidden global subprocess.Popen");

  // Allowed names used in ways torch.save never does.
  PickleWriter call_storage;
  call_storage.Proto(2).Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop();
  ExpectPickleRejected(call_storage.bytes(), "is not allowed");
}

TEST(TorchBin, RejectsInconsistentTensors) {
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 6, 0, {10}, {1}).bytes(),
                       "reaches element 9 of a storage of 6");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 6, 5, {2}, {1}).bytes(), "reaches element 6");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 6, 0, {2, 3}, {4, 1}).bytes(), "reaches element 6");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 6, 0, {2, 3}, {3}).bytes(), "differ in length");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 600, 0, {6}, {1}).bytes(),
                       "holds 24 bytes but storage 0 needs 2400");
  ExpectPickleRejected(StateDictWith("DoubleStorage", "0", 6, 0, {6}, {1}).bytes(), "needs 48");
  ExpectPickleRejected(StateDictWith("FloatStorage", "9", 6, 0, {6}, {1}).bytes(), "record data/9 is missing");
  ExpectPickleRejected(StateDictWith("FloatStorage", "../0", 6, 0, {6}, {1}).bytes(), "bad storage key");
  ExpectPickleRejected(StateDictWith("ComplexFloatStorage", "0", 6, 0, {6}, {1}).bytes(),
                       "forbidden global torch.ComplexFloatStorage");
  // Sizes whose products overflow, and a stride-0 view that would expand one element into 8 TiB.
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 6, 0, {int64_t{1} << 40, int64_t{1} << 40}, {1, 1}).bytes(),
                       "overflows");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 6, 0, {int64_t{1} << 62, 2}, {int64_t{1} << 62, 0}).bytes(),
                       "overflows");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 6, 0, {int64_t{1} << 41}, {0}).bytes(), "copies");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", 1ll << 61, 0, {6}, {1}).bytes(), "overflow a byte count");
  ExpectPickleRejected(StateDictWith("FloatStorage", "0", -1, 0, {6}, {1}).bytes(), "negative size");
  // The same storage key used as two different dtypes.
  PickleWriter two_dtypes;
  two_dtypes.Proto(2).Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark().Str("a");
  two_dtypes.Tensor("FloatStorage", "0", 6, 0, {6}, {1}).Str("b").Tensor("IntStorage", "0", 6, 0, {6}, {1});
  two_dtypes.SetItems().Stop();
  ExpectPickleRejected(two_dtypes.bytes(), "is used as both");
  // Bool storages must hold 0 or 1.
  auto records = GoodRecords();
  records["data/0"] = std::string("\x01\x00\x05", 3);
  ExpectPickleRejected(StateDictWith("BoolStorage", "0", 3, 0, {3}, {1}).bytes(), "bool storage 0 holds byte 5",
                       records);
}

TEST(TorchBin, RejectsNonStateDicts) {
  PickleWriter list;
  list.Proto(2).EmptyList().Stop();
  ExpectPickleRejected(list.bytes(), "not a state dict");
  PickleWriter int_value;
  int_value.Proto(2).EmptyDict().Str("epoch").Int(3).SetItem().Stop();
  ExpectPickleRejected(int_value.bytes(), "state dict entry \"epoch\" is 3, not a tensor");
  PickleWriter duplicate;
  duplicate.Proto(2).EmptyDict().Mark().Str("a").Tensor("FloatStorage", "0", 6, 0, {6}, {1}).Str("a");
  duplicate.Tensor("FloatStorage", "0", 6, 0, {6}, {1}).SetItems().Stop();
  ExpectPickleRejected(duplicate.bytes(), "appears twice");
  ExpectPickleRejected("garbage", "data.pkl: pickle");
  ExpectPickleRejected(GoodPickle().substr(0, 100), "truncated");
}

TEST(TorchBin, RejectsBrokenArchives) {
  const std::string good = MakeZip(GoodRecords());
  EXPECT_ERROR(ParseTorchBin("", "empty.bin"), absl::StatusCode::kDataLoss, "empty.bin");
  EXPECT_ERROR(ParseTorchBin(good.substr(0, good.size() / 2), "half.bin"), absl::StatusCode::kDataLoss, "half.bin");
  EXPECT_ERROR(ParseTorchBin(std::string(4096, 'x'), "junk.bin"), absl::StatusCode::kDataLoss, "junk.bin");
  EXPECT_ERROR(ParseTorchBin(std::string("\x80\x02\x8a\x0a") + std::string(100, 'x'), "legacy.bin"),
               absl::StatusCode::kInvalidArgument, "legacy");
  std::map<std::string, std::string> no_pickle = GoodRecords();
  no_pickle.erase("data.pkl");
  EXPECT_ERROR(ParseTorchBin(MakeZip(no_pickle), "nopkl.bin"), absl::StatusCode::kInvalidArgument, "no data.pkl");
  // Records libtorch's reader itself reads on opening, and names it would confuse.
  std::map<std::string, std::string> records = GoodRecords();
  records[".data/version"] = "x\n";
  EXPECT_ERROR(ParseTorchBin(MakeZip(records), "v.bin"), absl::StatusCode::kInvalidArgument,
               "v.bin: cannot read torch.save checkpoint: unsupported format version \"x\"");
  records[".data/version"] = "999\n";
  EXPECT_ERROR(ParseTorchBin(MakeZip(records), "v.bin"), absl::StatusCode::kInvalidArgument, "version \"999\"");
  records.erase(".data/version");
  records["DATA.PKL"] = "";
  EXPECT_ERROR(ParseTorchBin(MakeZip(records), "dup.bin"), absl::StatusCode::kInvalidArgument, "appears twice");
  // An entry flagged as a directory: libtorch's reader would hand back an uninitialized buffer.
  std::string directory = good;
  const size_t entry = directory.find("PK\x01\x02");
  ASSERT_NE(entry, std::string::npos);
  directory[entry + 38] = '\x10';  // External attributes: DOS directory bit.
  EXPECT_ERROR(ParseTorchBin(directory, "dir.bin"), absl::StatusCode::kInvalidArgument, "marked as a directory");
  for (size_t cut = 0; cut < good.size(); cut += 7) {
    EXPECT_FALSE(ParseTorchBin(good.substr(0, cut), "cut.bin").ok()) << cut;
  }
}

TEST(TorchBin, ByteFlipsNeverCrash) {
  const std::string good = MakeZip(GoodRecords());
  for (size_t i = 0; i < good.size(); ++i) {
    for (char c : {'\0', '\x01', '\x7f', '\xff'}) {
      std::string bad = good;
      bad[i] = c;
      (void)ParseTorchBin(bad, "flip.bin");  // Must not crash or throw.
    }
  }
  // Flips inside the pickle, re-zipped so that the zip layer accepts them.
  const std::string pickle = GoodPickle();
  for (size_t i = 0; i < pickle.size(); ++i) {
    for (char c : {'\0', '\x01', '(', '.', 'R', 'b', '\x80', '\xff'}) {
      auto records = GoodRecords();
      records["data.pkl"][i] = c;
      (void)ParseTorchBin(MakeZip(records), "flip.bin");
    }
  }
}

// The shared parity checkpoints: the same weights saved by torch.save (.bin) and as safetensors.
TEST(TorchBinParity, BinMatchesSafetensorsExactly) {
  VQD_SKIP_WITHOUT_PARITY(parity);
  const std::string bin_root = parity + "/tiny/model-bin";
  const std::string st_root = parity + "/tiny/model";
  int compared = 0;
  for (const std::string component :
       {"learned_classifier_free_sampling_embeddings", "text_encoder", "transformer", "vqvae"}) {
    SCOPED_TRACE(component);
    const std::vector<std::string> stems = {"diffusion_pytorch_model", "model", "pytorch_model"};
    absl::StatusOr<std::string> bin_path =
        FindFirstExisting(bin_root + "/" + component, WeightsFileCandidates(stems, ""));
    absl::StatusOr<std::string> st_path =
        FindFirstExisting(st_root + "/" + component, WeightsFileCandidates(stems, ""));
    ASSERT_TRUE(bin_path.ok()) << bin_path.status();
    ASSERT_TRUE(st_path.ok()) << st_path.status();
    ASSERT_TRUE(absl::EndsWith(*bin_path, ".bin")) << *bin_path;
    ASSERT_TRUE(absl::EndsWith(*st_path, ".safetensors")) << *st_path;

    absl::StatusOr<TensorMap> bin = ReadTorchBin(*bin_path);
    absl::StatusOr<TensorMap> st = ReadSafetensors(*st_path);
    ASSERT_TRUE(bin.ok()) << bin.status();
    ASSERT_TRUE(st.ok()) << st.status();
    for (const auto& [name, tensor] : *bin) {
      if (st->count(name) == 0) {
        // transformers checkpoints may carry a position_ids buffer that safetensors exports drop.
        std::cout << "[ note ] " << *bin_path << " has extra tensor " << name << " " << tensor.sizes() << "\n";
        EXPECT_TRUE(absl::EndsWith(name, "position_ids")) << "unexpected extra tensor " << name;
      }
    }
    for (const auto& [name, expected] : *st) {
      SCOPED_TRACE(name);
      const auto it = bin->find(name);
      ASSERT_NE(it, bin->end()) << "missing from " << *bin_path;
      const torch::Tensor& actual = it->second;
      EXPECT_EQ(actual.scalar_type(), expected.scalar_type());
      EXPECT_EQ(actual.sizes(), expected.sizes());
      EXPECT_TRUE(actual.is_contiguous());
      EXPECT_TRUE(torch::equal(actual, expected));
      ++compared;
    }
  }
  EXPECT_GT(compared, 200);
  std::cout << "[ info ] compared " << compared << " tensors\n";
}

TEST(TorchBinParity, TruncatedAndCorruptedRealFilesFail) {
  VQD_SKIP_WITHOUT_PARITY(parity);
  const std::string path = parity + "/tiny/model-bin/transformer/diffusion_pytorch_model.bin";
  absl::StatusOr<std::string> bytes = ReadFile(path, 64 << 20);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ASSERT_TRUE(ParseTorchBin(*bytes, path).ok());
  EXPECT_ERROR(ParseTorchBin(bytes->substr(0, bytes->size() / 2), "half.bin"), absl::StatusCode::kDataLoss, "half.bin");

  // Rewrite the archive with a corrupted pickle: the zip is valid, the pickle is not.
  caffe2::serialize::PyTorchStreamReader reader(path);
  std::map<std::string, std::string> records;
  for (const std::string& name : reader.getAllRecords()) {
    if (name == "version" || absl::StartsWith(name, ".data/")) continue;  // The writer adds its own.
    auto [data, size] = reader.getRecord(name);
    records[name] = std::string(static_cast<const char*>(data.get()), size);
  }
  ASSERT_EQ(records.count("data.pkl"), 1u);
  ASSERT_TRUE(ParseTorchBin(MakeZip(records), "rezipped.bin").ok());
  const std::string original = records["data.pkl"];
  std::string& pickle = records["data.pkl"];
  for (size_t i = pickle.size() / 3; i < pickle.size() / 3 + 16; ++i) pickle[i] = '\xee';
  EXPECT_ERROR(ParseTorchBin(MakeZip(records), "corrupt.bin"), absl::StatusCode::kInvalidArgument, "corrupt.bin");
  pickle = original.substr(0, original.size() / 2);
  EXPECT_ERROR(ParseTorchBin(MakeZip(records), "halfpickle.bin"), absl::StatusCode::kDataLoss, "pickle");
}


// A training checkpoint as the official solver saves it: {"last_epoch": 0, "model": state dict,
// "ema": state dict, "optimizer_and_scheduler": {... a scheduler object of its own class, inf ...}}.
std::string TrainingCheckpointPickle(bool opaque_in_ema = false) {
  PickleWriter w;
  w.Proto(2).EmptyDict().Mark();
  w.Str("last_epoch").Int(0);
  w.Str("model").Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
  w.Str("content_codec.w").Tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  w.Str("transformer.bad").Tensor("BoolStorage", "3", 3, 0, {3}, {1});  // never read unless selected
  w.SetItems();
  w.Str("ema").Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
  w.Str("transformer.h").Tensor("HalfStorage", "1", 2, 0, {2}, {1});
  if (opaque_in_ema) w.Str("transformer.odd").Global("mymodule", "Thing").EmptyTuple().Reduce();
  w.SetItems();
  w.Str("optimizer_and_scheduler").EmptyDict().Mark();
  w.Str("scheduler").Global("image_synthesis.engine.lr_scheduler", "ReduceLROnPlateauWithWarmup").EmptyTuple().Reduce();
  w.EmptyDict().Str("best").Float(std::numeric_limits<double>::infinity()).SetItem().Build();
  w.Str("state").EmptyDict().Int(0).Tensor("FloatStorage", "2", 0, 0, {0}, {1}).SetItem();
  w.SetItems();
  w.SetItems().Stop();
  return w.bytes();
}

std::map<std::string, std::string> TrainingCheckpointRecords(bool opaque_in_ema = false) {
  auto records = GoodRecords();
  records["data.pkl"] = TrainingCheckpointPickle(opaque_in_ema);
  records["data/3"] = std::string("\x01\x00\x05", 3);  // not a valid bool storage
  return records;
}

TEST(TorchBinStateDicts, ReadsSelectedDictsOfATrainingCheckpoint) {
  auto dicts = ParseTorchBinStateDicts(MakeZip(TrainingCheckpointRecords()), "last.pth",
                                       {{"ema", {}}, {"model", {"content_codec."}}, {"absent", {}}});
  ASSERT_TRUE(dicts.ok()) << dicts.status();
  ASSERT_EQ(dicts->size(), 2u);  // "absent" is left out
  EXPECT_TRUE(torch::equal(dicts->at("ema").at("transformer.h"), torch::tensor({0.5f, -3.0f}).to(torch::kFloat16)));
  ASSERT_EQ(dicts->at("model").size(), 1u);  // the prefix keeps content_codec.* only
  EXPECT_TRUE(torch::equal(dicts->at("model").at("content_codec.w"), torch::arange(6, torch::kFloat32).reshape({2, 3})));
}

TEST(TorchBinStateDicts, ReportsWhatCannotBeRead) {
  // Selecting the broken tensor reads its storage, which then fails.
  EXPECT_ERROR(ParseTorchBinStateDicts(MakeZip(TrainingCheckpointRecords()), "last.pth", {{"model", {}}}),
               absl::StatusCode::kInvalidArgument, "entry \"transformer.bad\": bool storage 3 holds byte 5");
  // An object of an unknown class is inert, but not a tensor.
  EXPECT_ERROR(ParseTorchBinStateDicts(MakeZip(TrainingCheckpointRecords(true)), "odd.pth", {{"ema", {}}}),
               absl::StatusCode::kInvalidArgument, "\"transformer.odd\" is <opaque mymodule.Thing(...)>, not a tensor");
  EXPECT_ERROR(ParseTorchBinStateDicts(MakeZip(TrainingCheckpointRecords()), "last.pth", {{"last_epoch", {}}}),
               absl::StatusCode::kInvalidArgument, "entry \"last_epoch\" holds 0, not a state dict");
  EXPECT_ERROR(ParseTorchBinStateDicts(MakeZip(GoodRecords()), "flat.bin", {{"w", {}}}),
               absl::StatusCode::kInvalidArgument, "entry \"w\" holds <tensor>, not a state dict");
  PickleWriter list;
  list.Proto(2).EmptyList().Stop();
  auto records = GoodRecords();
  records["data.pkl"] = list.bytes();
  EXPECT_ERROR(ParseTorchBinStateDicts(MakeZip(records), "list.pth", {{"model", {}}}),
               absl::StatusCode::kInvalidArgument, "not a checkpoint dict");
  // The flat reader still refuses unknown names outright.
  EXPECT_ERROR(ParseTorchBin(MakeZip(TrainingCheckpointRecords()), "last.pth"), absl::StatusCode::kInvalidArgument,
               "forbidden global image_synthesis.engine.lr_scheduler.ReduceLROnPlateauWithWarmup");
  // A truncated archive and a truncated pickle fail cleanly.
  const std::string good = MakeZip(TrainingCheckpointRecords());
  EXPECT_ERROR(ParseTorchBinStateDicts(good.substr(0, good.size() / 2), "half.pth", {{"ema", {}}}),
               absl::StatusCode::kDataLoss, "half.pth");
  records = TrainingCheckpointRecords();
  records["data.pkl"] = records["data.pkl"].substr(0, records["data.pkl"].size() / 2);
  EXPECT_FALSE(ParseTorchBinStateDicts(MakeZip(records), "cut.pth", {{"ema", {}}}).ok());
}

TEST(TorchBinStateDicts, ByteFlipsNeverCrash) {
  const std::string pickle = TrainingCheckpointPickle(true);
  for (size_t i = 0; i < pickle.size(); i += 2) {
    for (int flip : {0x01, 0x80, 0xFF}) {
      auto records = TrainingCheckpointRecords(true);
      records["data.pkl"][i] = static_cast<char>(records["data.pkl"][i] ^ flip);
      (void)ParseTorchBinStateDicts(MakeZip(records), "flip.pth", {{"ema", {}}, {"model", {}}});
    }
  }
}

TEST(TorchBinTensor, ReadsASingleTensorFile) {
  PickleWriter w;
  w.Proto(2).Tensor("LongStorage", "0", 4, 0, {4}, {1}).Stop();
  const std::vector<int64_t> values = {0, 2, 1, 0};
  auto records = GoodRecords();
  records["data.pkl"] = w.bytes();
  records["data/0"] = std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t));
  absl::StatusOr<torch::Tensor> t = ParseTorchBinTensor(MakeZip(records), "table.pt");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(torch::equal(*t, torch::tensor(values, torch::kInt64)));
  EXPECT_ERROR(ParseTorchBinTensor(MakeZip(GoodRecords()), "dict.pt"), absl::StatusCode::kInvalidArgument,
               "not a tensor");
}

}  // namespace
}  // namespace vqd::io
