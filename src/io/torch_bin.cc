#include "io/torch_bin.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <caffe2/serialize/versions.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "io/checked_math.h"
#include "io/mapped_file.h"
#include "io/pickle_reader.h"
#include "io/zip_directory.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "torch.save storages are little-endian; add byte swapping");

namespace vqd::io {
namespace {

using Kind = PickleValue::Kind;

// Deflate cannot expand data more than ~1032:1, so a larger claimed size is a lie that would only
// make libtorch's reader allocate a huge buffer.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr size_t kMaxStorageKey = 128;
constexpr size_t kMaxDims = 64;

// Zip records keyed by name without the archive folder ("data.pkl", "data/0").
using RecordIndex = std::map<std::string, ZipEntry>;

// Bounds-checked ReadAdapterInterface over bytes we already hold (libtorch's MemoryReadAdapter
// copies past the end when asked to).
class BytesReadAdapter final : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit BytesReadAdapter(std::string_view bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* what = "") const override {
    if (pos >= bytes_.size()) return 0;
    const size_t count = std::min<uint64_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, count);
    return count;  // Short reads make miniz report an error.
  }

 private:
  std::string_view bytes_;
};

std::optional<torch::Dtype> StorageDtype(const PickleValue& value) {
  if (!value.is(Kind::kGlobal) || value.text != "torch") return std::nullopt;
  static const std::map<std::string, torch::Dtype> kNames = {
      {"DoubleStorage", torch::kFloat64},
      {"FloatStorage", torch::kFloat32},
      {"HalfStorage", torch::kFloat16},
      {"BFloat16Storage", torch::kBFloat16},
      {"LongStorage", torch::kInt64},
      {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},
      {"CharStorage", torch::kInt8},
      {"ByteStorage", torch::kUInt8},
      {"BoolStorage", torch::kBool},
      {"UntypedStorage", torch::kUInt8},
      // Newer files may name the dtype itself.
      {"float64", torch::kFloat64},
      {"double", torch::kFloat64},
      {"float32", torch::kFloat32},
      {"float", torch::kFloat32},
      {"float16", torch::kFloat16},
      {"half", torch::kFloat16},
      {"bfloat16", torch::kBFloat16},
      {"int64", torch::kInt64},
      {"long", torch::kInt64},
      {"int32", torch::kInt32},
      {"int", torch::kInt32},
      {"int16", torch::kInt16},
      {"short", torch::kInt16},
      {"int8", torch::kInt8},
      {"uint8", torch::kUInt8},
      {"bool", torch::kBool},
  };
  const auto it = kNames.find(value.name);
  if (it == kNames.end()) return std::nullopt;
  return it->second;
}

bool IsGlobal(const PickleValue& value, std::string_view module, std::string_view name) {
  return value.is(Kind::kGlobal) && value.text == module && value.name == name;
}

bool IsTensor(const PickleValue& value) { return value.is(Kind::kObject) && value.name == "tensor"; }

absl::StatusOr<std::vector<int64_t>> IntTuple(const PickleValue& value, std::string_view what) {
  if (!value.is(Kind::kTuple) && !value.is(Kind::kList)) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), " must be a tuple, got ", PickleDebugString(value)));
  }
  if (value.items.size() > kMaxDims) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(what), " has ", value.items.size(), " dimensions (limit ", kMaxDims, ")"));
  }
  std::vector<int64_t> out;
  for (const PickleValue* item : value.items) {
    if (!item->is(Kind::kInt) || item->integer < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(what), " must hold non-negative integers, got ", PickleDebugString(value)));
    }
    out.push_back(item->integer);
  }
  return out;
}

// Decodes UTF-8 whose code points are all below 256 into bytes (what _codecs.encode(s, "latin1")
// does for the bytes objects of protocol 2 pickles).
absl::StatusOr<std::string> Latin1FromUtf8(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if ((c & 0xE0) == 0xC0 && c <= 0xC3 && i + 1 < text.size() &&
               (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      out.push_back(static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F)));
      ++i;
    } else {
      return absl::InvalidArgumentError("_codecs.encode: text is not latin-1");
    }
  }
  return out;
}

// What a persistent id names: a storage record, checked against the archive but not read yet.
struct StorageRef {
  std::string key;
  torch::Dtype dtype = torch::kFloat32;
  int64_t numel = 0;
};

// A tensor as the pickle describes it: a strided view of a storage, checked to lie inside it. Its
// bytes are read only when the tensor is wanted (a training checkpoint holds optimizer state that
// nobody needs).
struct TensorRef {
  StorageRef storage;
  int64_t offset = 0;
  std::vector<int64_t> size, stride;
};

class TorchBinHandler final : public PickleHandler {
 public:
  // `opaque_unknown_globals`: names outside the allow-list become inert values instead of errors,
  // for the parts of a training checkpoint that are not state dicts (nothing is ever called; such a
  // value found where a tensor is needed is still an error).
  // `mapping`, when given, is the file `reader` reads: stored records then become tensors aliasing it
  // instead of copies (see LoadStorage).
  TorchBinHandler(caffe2::serialize::PyTorchStreamReader& reader, const RecordIndex& records,
                  const TorchBinLimits& limits, bool opaque_unknown_globals,
                  std::shared_ptr<const MappedFile> mapping)
      : reader_(reader),
        records_(records),
        limits_(limits),
        opaque_unknown_globals_(opaque_unknown_globals),
        mapping_(std::move(mapping)) {
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (const auto& [name, entry] : records_) ranges.emplace_back(entry.data_offset, entry.data_offset + entry.compressed_size);
    release_ = RangesDisjoint(std::move(ranges));
    // Reading the zip directory touched every record's local header, and the kernel may map the
    // whole large page-cache folio around each (up to 2 MiB of record data per record). Nothing
    // aliases the fresh mapping yet, so drop those pages now; the copies fault in what they read.
    if (mapping_ != nullptr && release_) {
      for (const auto& [name, entry] : records_) mapping_->ReleasePages(entry.data_offset, entry.compressed_size);
    }
  }

  absl::StatusOr<PickleValue*> Global(PickleArena& arena, const std::string& module, const std::string& name) override {
    PickleValue probe;
    probe.kind = Kind::kGlobal;
    probe.text = module;
    probe.name = name;
    const bool allowed = IsGlobal(probe, "collections", "OrderedDict") ||
                         IsGlobal(probe, "torch._utils", "_rebuild_tensor_v2") ||
                         IsGlobal(probe, "torch._utils", "_rebuild_parameter") ||
                         IsGlobal(probe, "torch._utils", "_rebuild_parameter_with_state") ||
                         IsGlobal(probe, "_codecs", "encode") || StorageDtype(probe).has_value();
    if (!allowed && !opaque_unknown_globals_) {
      return absl::InvalidArgumentError(
          absl::StrCat("forbidden global ", module.substr(0, 64), ".", name.substr(0, 64),
                       " (a state dict only needs OrderedDict, the torch tensor rebuild functions and storage types)"));
    }
    PickleValue* value = arena.New(Kind::kGlobal);
    value->text = module;
    value->name = name;
    return value;
  }

  absl::StatusOr<PickleValue*> Call(PickleArena& arena, const PickleValue& callable, const PickleValue& args) override {
    const auto& a = args.items;
    if (IsGlobal(callable, "collections", "OrderedDict")) {
      if (!a.empty()) return absl::InvalidArgumentError("OrderedDict() with arguments is not supported");
      return arena.New(Kind::kDict);
    }
    if (IsGlobal(callable, "torch._utils", "_rebuild_tensor_v2")) {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.size() != 6 && a.size() != 7) {
        return absl::InvalidArgumentError(absl::StrCat("_rebuild_tensor_v2 takes 6 or 7 arguments, got ", a.size()));
      }
      return RebuildTensor(arena, *a[0], *a[1], *a[2], *a[3]);
    }
    if (IsGlobal(callable, "torch._utils", "_rebuild_parameter") ||
        IsGlobal(callable, "torch._utils", "_rebuild_parameter_with_state")) {
      // (data, requires_grad, backward_hooks[, state]): a Parameter is its data for inference.
      const size_t expected = callable.name == "_rebuild_parameter" ? 3 : 4;
      if (a.size() != expected || !IsTensor(*a[0])) {
        return absl::InvalidArgumentError(
            absl::StrCat(callable.name, " expects (tensor, ...), got ", PickleDebugString(args)));
      }
      return a[0];
    }
    if (IsGlobal(callable, "_codecs", "encode")) {
      if (a.size() != 2 || !a[0]->is(Kind::kString) || !a[1]->is(Kind::kString) ||
          (a[1]->text != "latin1" && a[1]->text != "latin-1")) {
        return absl::InvalidArgumentError(absl::StrCat("unsupported _codecs.encode", PickleDebugString(args)));
      }
      VQD_ASSIGN_OR_RETURN(std::string bytes, Latin1FromUtf8(a[0]->text));
      PickleValue* value = arena.New(Kind::kBytes);
      value->text = std::move(bytes);
      return value;
    }
    if (opaque_unknown_globals_ && callable.is(Kind::kGlobal) && !StorageDtype(callable).has_value()) {
      PickleValue* value = arena.New(Kind::kObject);
      value->name = absl::StrCat("opaque ", callable.text.substr(0, 64), ".", callable.name.substr(0, 64), "(...)");
      return value;
    }
    return absl::InvalidArgumentError(absl::StrCat("calling ", PickleDebugString(callable), " is not allowed"));
  }

  absl::StatusOr<PickleValue*> PersistentLoad(PickleArena& arena, const PickleValue& pid) override {
    // ('storage', storage_type, key, location, numel)
    const auto& p = pid.items;
    if (!pid.is(Kind::kTuple) || p.size() != 5 || !p[0]->is(Kind::kString) || p[0]->text != "storage" ||
        !p[2]->is(Kind::kString) || !p[4]->is(Kind::kInt)) {
      return absl::InvalidArgumentError(absl::StrCat("unsupported persistent id ", PickleDebugString(pid)));
    }
    const std::optional<torch::Dtype> dtype = StorageDtype(*p[1]);
    if (!dtype) return absl::InvalidArgumentError(absl::StrCat("unknown storage type ", PickleDebugString(*p[1])));
    const std::string& key = p[2]->text;
    const int64_t numel = p[4]->integer;
    if (key.empty() || key.size() > kMaxStorageKey ||
        key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
            std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad storage key ", PickleDebugString(*p[2])));
    }
    if (numel < 0) return absl::InvalidArgumentError(absl::StrCat("storage ", key, " has negative size ", numel));

    const auto known = storages_.find(key);
    if (known != storages_.end()) {
      if (known->second.dtype != *dtype || known->second.numel != numel) {
        return absl::InvalidArgumentError(absl::StrCat("storage ", key, " is used as both ",
                                                       DtypeName(known->second.dtype), "[", known->second.numel,
                                                       "] and ", DtypeName(*dtype), "[", numel, "]"));
      }
    } else {
      if (storages_.size() >= limits_.max_tensors) return absl::InvalidArgumentError("too many storages");
      VQD_RETURN_IF_ERROR(CheckStorageRecord(key, *dtype, numel));
      storages_.emplace(key, StorageRef{key, *dtype, numel});
    }
    PickleValue* value = arena.New(Kind::kObject);
    value->name = "storage";
    value->native = storages_.at(key);
    return value;
  }

  absl::Status Build(PickleValue& obj, const PickleValue& state) override {
    // torch.save sets OrderedDict._metadata (per-module versions) through BUILD; it does not affect
    // the tensors. An inert object stays inert.
    if (obj.is(Kind::kDict)) return absl::OkStatus();
    if (opaque_unknown_globals_ && obj.is(Kind::kObject) && absl::StartsWith(obj.name, "opaque ")) {
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat("BUILD on ", PickleDebugString(obj), " is not supported"));
  }

  // The tensor a rebuilt value stands for, read from the archive now (contiguous, CPU).
  absl::StatusOr<torch::Tensor> Materialize(const PickleValue& value) {
    const auto& ref = std::any_cast<const TensorRef&>(value.native);
    VQD_ASSIGN_OR_RETURN(torch::Tensor flat, LoadStorage(ref.storage));
    int64_t numel = 0;
    if (!CheckedNumel(ref.size, &numel)) return absl::InternalError("tensor size overflows");  // checked before
    if (numel == 0) return torch::empty(ref.size, flat.options());
    torch::Tensor tensor = flat.as_strided(ref.size, ref.stride, ref.offset);
    if (tensor.is_contiguous()) return tensor;
    // Stride-0 dims make numel independent of the storage size, so bound the copy explicitly.
    uint64_t bytes = 0;
    if (!CheckedMul<uint64_t>(static_cast<uint64_t>(numel), flat.element_size(), &bytes) ||
        !CheckedAdd(copied_bytes_, bytes, &copied_bytes_) || copied_bytes_ > loaded_bytes_ + limits_.copy_slack_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("non-contiguous tensors would need ", copied_bytes_,
                                                     " bytes of copies, more than the file's storages justify"));
    }
    return tensor.contiguous();
  }

 private:
  // The record of a storage must exist and hold its bytes; checked before anything is read.
  absl::Status CheckStorageRecord(const std::string& key, torch::Dtype dtype, int64_t numel) const {
    const std::string record = "data/" + key;
    int64_t needed = 0;
    if (!CheckedMul<int64_t>(numel, static_cast<int64_t>(c10::elementSize(dtype)), &needed)) {
      return absl::InvalidArgumentError(absl::StrCat("storage ", key, ": ", numel, " elements overflow a byte count"));
    }
    const auto entry = records_.find(record);
    if (entry == records_.end()) return absl::DataLossError(absl::StrCat("record ", record, " is missing"));
    if (entry->second.uncompressed_size < static_cast<uint64_t>(needed)) {
      return absl::DataLossError(absl::StrCat("record ", record, " holds ", entry->second.uncompressed_size,
                                              " bytes but storage ", key, " needs ", needed, " (", numel, " x ",
                                              DtypeName(dtype), ")"));
    }
    return absl::OkStatus();
  }

  // torch's bool must hold 0 or 1; any other byte is undefined behaviour in kernels.
  static absl::Status CheckBoolStorage(const StorageRef& storage, const void* data) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    for (int64_t i = 0; i < storage.numel; ++i) {
      if (bytes[i] > 1) {
        return absl::InvalidArgumentError(absl::StrCat("bool storage ", storage.key, " holds byte ", int{bytes[i]}));
      }
    }
    return absl::OkStatus();
  }

  // The record's entry if it can be aliased in the mapping: stored, not compressed, and aligned for
  // `dtype`; nullptr otherwise (then it is read through libtorch's reader, as always).
  const ZipEntry* StoredRecord(const std::string& record, torch::Dtype dtype) const {
    if (mapping_ == nullptr) return nullptr;
    const auto found = records_.find(record);
    if (found == records_.end()) return nullptr;
    const ZipEntry& entry = found->second;
    const uintptr_t address = reinterpret_cast<uintptr_t>(mapping_->bytes().data()) + entry.data_offset;
    if (entry.method != 0 || entry.compressed_size != entry.uncompressed_size || address % c10::elementSize(dtype) != 0) {
      return nullptr;
    }
    return &entry;
  }

  absl::StatusOr<torch::Tensor> LoadStorage(const StorageRef& storage) {
    const auto cached = loaded_.find(storage.key);
    if (cached != loaded_.end()) return cached->second;
    const std::string record = "data/" + storage.key;
    const int64_t needed = storage.numel * static_cast<int64_t>(c10::elementSize(storage.dtype));  // checked
    torch::Tensor flat;
    if (needed == 0) {
      flat = torch::empty({0}, torch::TensorOptions().dtype(storage.dtype));
    } else if (const ZipEntry* entry = StoredRecord(record, storage.dtype); entry != nullptr) {
      // A stored record (torch.save stores them, aligned) is aliased, not copied: a loader that
      // copies each tensor into its parameter and drops it never holds the file's bytes and the
      // weights at once. The storage's pages leave the process when its last tensor dies, unless
      // records overlap. The same bytes getRecord would return: ReadZipDirectory checked that they
      // lie in the file, CheckStorageRecord that they hold the storage (libtorch builds miniz without
      // its CRC check of extracted data, so getRecord checked no more).
      char* data = mapping_->mutable_data() + entry->data_offset;
      if (storage.dtype == torch::kBool) VQD_RETURN_IF_ERROR(CheckBoolStorage(storage, data));
      loaded_bytes_ += static_cast<uint64_t>(needed);
      const size_t offset = entry->data_offset, length = entry->compressed_size;
      flat = torch::from_blob(
          data, {storage.numel},
          [mapping = mapping_, offset, length, release = release_](void*) {
            if (release) mapping->ReleasePages(offset, length);
          },
          torch::TensorOptions().dtype(storage.dtype));
    } else {
      auto [data, size] = reader_.getRecord(record);
      // Check what was actually read too: the zip reader matches names case-insensitively.
      if (size < static_cast<uint64_t>(needed)) {
        return absl::DataLossError(
            absl::StrCat("record ", record, " holds ", size, " bytes but storage ", storage.key, " needs ", needed));
      }
      if (storage.dtype == torch::kBool) VQD_RETURN_IF_ERROR(CheckBoolStorage(storage, data.get()));
      loaded_bytes_ += static_cast<uint64_t>(needed);
      auto owner = std::make_shared<at::DataPtr>(std::move(data));
      flat = torch::from_blob(
          owner->get(), {storage.numel}, [owner](void*) {}, torch::TensorOptions().dtype(storage.dtype));
    }
    loaded_.emplace(storage.key, flat);
    return flat;
  }

  absl::StatusOr<PickleValue*> RebuildTensor(PickleArena& arena, const PickleValue& storage,
                                             const PickleValue& offset_value, const PickleValue& size_value,
                                             const PickleValue& stride_value) {
    if (!storage.is(Kind::kObject) || storage.name != "storage") {
      return absl::InvalidArgumentError(
          absl::StrCat("_rebuild_tensor_v2 needs a storage, got ", PickleDebugString(storage)));
    }
    if (!offset_value.is(Kind::kInt) || offset_value.integer < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad storage offset ", PickleDebugString(offset_value)));
    }
    TensorRef ref;
    ref.storage = std::any_cast<const StorageRef&>(storage.native);
    ref.offset = offset_value.integer;
    VQD_ASSIGN_OR_RETURN(ref.size, IntTuple(size_value, "tensor size"));
    VQD_ASSIGN_OR_RETURN(ref.stride, IntTuple(stride_value, "tensor stride"));
    if (ref.size.size() != ref.stride.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor size ", ShapeString(ref.size), " and stride ",
                                                     ShapeString(ref.stride), " differ in length"));
    }
    if (++tensor_count_ > limits_.max_tensors) return absl::InvalidArgumentError("too many tensors");
    int64_t numel = 0;
    if (!CheckedNumel(ref.size, &numel))
      return absl::InvalidArgumentError(absl::StrCat("tensor size ", ShapeString(ref.size), " overflows"));
    if (numel != 0) {
      // The element farthest from the start is offset + sum((size_i - 1) * stride_i); it must lie
      // inside the storage for every element to.
      int64_t last = ref.offset;
      for (size_t i = 0; i < ref.size.size(); ++i) {
        int64_t step = 0;
        if (!CheckedMul<int64_t>(ref.size[i] - 1, ref.stride[i], &step) || !CheckedAdd(last, step, &last)) {
          return absl::InvalidArgumentError(absl::StrCat("tensor stride ", ShapeString(ref.stride), " overflows"));
        }
      }
      if (last >= ref.storage.numel) {
        return absl::InvalidArgumentError(absl::StrCat("tensor of size ", ShapeString(ref.size), ", stride ",
                                                       ShapeString(ref.stride), " at offset ", ref.offset,
                                                       " reaches element ", last, " of a storage of ",
                                                       ref.storage.numel));
      }
    }
    PickleValue* value = arena.New(Kind::kObject);
    value->name = "tensor";
    value->native = std::move(ref);
    return value;
  }

  caffe2::serialize::PyTorchStreamReader& reader_;
  const RecordIndex& records_;  // Keyed by name without the archive folder.
  const TorchBinLimits& limits_;
  const bool opaque_unknown_globals_;
  const std::shared_ptr<const MappedFile> mapping_;  // null: copy every record
  bool release_ = false;                              // records are disjoint: a dead storage's pages may go
  std::map<std::string, StorageRef> storages_;    // every storage the pickle names
  std::map<std::string, torch::Tensor> loaded_;   // key -> flat tensor over the record, once read
  size_t tensor_count_ = 0;
  uint64_t loaded_bytes_ = 0;
  uint64_t copied_bytes_ = 0;
};

const ZipEntry* FindRecordIgnoringCase(const RecordIndex& records, absl::string_view name) {
  for (const auto& [record_name, entry] : records) {
    if (absl::EqualsIgnoreCase(record_name, name)) return &entry;
  }
  return nullptr;
}

// PyTorchStreamReader's constructor reads the version record (and, in newer libtorch, the
// serialization id) and throws on a bad one, after miniz allocated its state, which then leaks.
// Check those records ourselves so that the constructor only ever sees good ones.
absl::Status CheckRecordsReadOnOpen(std::string_view bytes, const RecordIndex& records) {
  const ZipEntry* version = FindRecordIgnoringCase(records, ".data/version");
  if (version == nullptr) version = FindRecordIgnoringCase(records, "version");
  if (version == nullptr) return absl::InvalidArgumentError("no version record");
  for (const ZipEntry* entry : {version, FindRecordIgnoringCase(records, ".data/serialization_id")}) {
    if (entry == nullptr) continue;
    if (entry->method != 0 || entry->compressed_size > 1024) {
      return absl::InvalidArgumentError(absl::StrCat("record ", entry->name, " must be stored uncompressed and small"));
    }
    if (ZipCrc32(bytes.substr(entry->data_offset, entry->compressed_size)) != entry->crc32) {
      return absl::DataLossError(absl::StrCat("record ", entry->name, " fails its CRC check"));
    }
  }
  const absl::string_view text =
      absl::StripAsciiWhitespace(absl::string_view(bytes.data() + version->data_offset, version->compressed_size));
  uint64_t number = 0;
  if (!absl::SimpleAtoi(text, &number) || text.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(text[0])) ||
      number < caffe2::serialize::kMinSupportedFileFormatVersion ||
      number > caffe2::serialize::kMaxSupportedFileFormatVersion) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported format version \"", std::string(text.substr(0, 16)),
                                                   "\" (this libtorch reads ",
                                                   caffe2::serialize::kMinSupportedFileFormatVersion, " to ",
                                                   caffe2::serialize::kMaxSupportedFileFormatVersion, ")"));
  }
  return absl::OkStatus();
}

// Checks every record's claims before libtorch's reader acts on them.
absl::StatusOr<RecordIndex> IndexRecords(std::string_view bytes) {
  absl::StatusOr<std::vector<ZipEntry>> entries = ReadZipDirectory(bytes);
  if (!entries.ok()) {
    if (!bytes.empty() && static_cast<uint8_t>(bytes[0]) == 0x80) {
      return absl::InvalidArgumentError("not a zip archive; torch.save's legacy (pre-1.6) format is not supported");
    }
    return entries.status();
  }
  if (entries->empty()) return absl::InvalidArgumentError("the zip archive is empty");
  const std::string& first = entries->front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos)
    return absl::InvalidArgumentError(absl::StrCat("record \"", first.substr(0, 64), "\" is not inside a folder"));
  const std::string prefix = first.substr(0, slash + 1);

  RecordIndex records;
  std::set<std::string> lowercase_names;
  for (ZipEntry& entry : *entries) {
    // Encrypted, patch data, strong encryption, masked local headers: never written by torch.save,
    // and miniz would fail on them only after allocating (see CheckRecordsReadOnOpen).
    if (entry.flags & (0x0001 | 0x0020 | 0x0040 | 0x2000)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", entry.name.substr(0, 64), " uses zip encryption or patch features (flags ", entry.flags, ")"));
    }
    if (entry.is_directory) {
      return absl::InvalidArgumentError(absl::StrCat("record ", entry.name.substr(0, 64), " is marked as a directory"));
    }
    if (entry.method != 0 && entry.method != 8) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", entry.name.substr(0, 64), " uses compression method ", entry.method));
    }
    uint64_t max_size = 0;
    if (entry.method == 8 && (!CheckedMul(entry.compressed_size, kMaxDeflateRatio, &max_size) ||
                              !CheckedAdd<uint64_t>(max_size, 1024, &max_size) || entry.uncompressed_size > max_size)) {
      return absl::DataLossError(absl::StrCat("record ", entry.name.substr(0, 64), " claims ", entry.uncompressed_size,
                                              " bytes from ", entry.compressed_size, " compressed"));
    }
    if (entry.name.compare(0, prefix.size(), prefix) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", entry.name.substr(0, 64), " is outside the archive folder ", prefix));
    }
    // libtorch looks records up case-insensitively: names equal but for case would be ambiguous.
    if (!lowercase_names.insert(absl::AsciiStrToLower(entry.name)).second) {
      return absl::InvalidArgumentError(absl::StrCat("record ", entry.name.substr(0, 64), " appears twice"));
    }
    std::string name = entry.name.substr(prefix.size());
    records.emplace(std::move(name), std::move(entry));
  }
  VQD_RETURN_IF_ERROR(CheckRecordsReadOnOpen(bytes, records));
  return records;
}

// A dict of name -> tensor, keeping the names that start with one of `prefixes` (all when empty).
// `what` names the dict in messages ("the pickle", "entry \"ema\"").
absl::StatusOr<TensorMap> ToTensorMap(const PickleValue& dict, TorchBinHandler& handler, const std::string& what,
                                      const std::vector<std::string>& prefixes = {}) {
  if (!dict.is(Kind::kDict)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " holds ", PickleDebugString(dict, 1), ", not a state dict"));
  }
  TensorMap tensors;
  for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    const PickleValue& key = *dict.items[i];
    const PickleValue& value = *dict.items[i + 1];
    if (!key.is(Kind::kString))
      return absl::InvalidArgumentError(absl::StrCat("state dict key ", PickleDebugString(key), " is not a string"));
    if (!prefixes.empty() && std::none_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) {
          return absl::StartsWith(key.text, p);
        })) {
      continue;
    }
    if (!IsTensor(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("state dict entry \"", key.text, "\" is ", PickleDebugString(value, 1), ", not a tensor"));
    }
    VQD_ASSIGN_OR_RETURN(torch::Tensor tensor, Annotate(handler.Materialize(value), absl::StrCat("entry \"", key.text, "\"")));
    if (!tensors.emplace(key.text, std::move(tensor)).second) {
      return absl::InvalidArgumentError(absl::StrCat("state dict key \"", key.text, "\" appears twice"));
    }
  }
  return tensors;
}

// The value stored under a string key of a dict, or nullptr.
const PickleValue* DictEntry(const PickleValue& dict, std::string_view key) {
  for (size_t i = 0; i + 1 < dict.items.size(); i += 2) {
    if (dict.items[i]->is(Kind::kString) && dict.items[i]->text == key) return dict.items[i + 1];
  }
  return nullptr;
}

// Opens the archive, runs its pickle and hands the root value to `use` while the reader lives.
template <typename Result>
absl::StatusOr<Result> WithPickleRoot(std::string_view bytes, const TorchBinLimits& limits, bool opaque_unknown_globals,
                                      const std::function<absl::StatusOr<Result>(const PickleValue&, TorchBinHandler&)>& use,
                                      std::shared_ptr<const MappedFile> mapping = nullptr) {
  VQD_ASSIGN_OR_RETURN(const RecordIndex records, IndexRecords(bytes));
  const auto pickle_entry = records.find("data.pkl");
  if (pickle_entry == records.end())
    return absl::InvalidArgumentError("no data.pkl record (not a torch.save checkpoint?)");
  if (pickle_entry->second.uncompressed_size > limits.max_pickle_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("data.pkl is ", pickle_entry->second.uncompressed_size,
                                                   " bytes (limit ", limits.max_pickle_bytes, ")"));
  }
  caffe2::serialize::PyTorchStreamReader reader(std::make_shared<BytesReadAdapter>(bytes));
  auto [pickle_data, pickle_size] = reader.getRecord("data.pkl");
  const std::string_view pickle(static_cast<const char*>(pickle_data.get()), pickle_size);

  TorchBinHandler handler(reader, records, limits, opaque_unknown_globals, std::move(mapping));
  PickleArena arena;
  PickleLimits pickle_limits;
  pickle_limits.max_bytes = limits.max_pickle_bytes;
  VQD_ASSIGN_OR_RETURN(const PickleValue* root, Annotate(RunPickle(pickle, handler, arena, pickle_limits), "data.pkl"));
  return use(*root, handler);
}

// Runs `parse` with libtorch's exceptions turned into statuses that name the file.
template <typename Result>
absl::StatusOr<Result> GuardedParse(std::string_view name_for_errors, const std::function<absl::StatusOr<Result>()>& parse) {
  absl::StatusOr<Result> result;
  // libtorch (its zip reader above all) reports corrupt input by throwing.
  try {
    result = parse();
  } catch (const c10::Error& e) {
    result = absl::DataLossError(absl::StrCat("libtorch: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    result = absl::ResourceExhaustedError("out of memory");
  } catch (const std::exception& e) {
    result = absl::DataLossError(absl::StrCat("libtorch: ", e.what()));
  }
  return Annotate(std::move(result), absl::StrCat(std::string(name_for_errors), ": cannot read torch.save checkpoint"));
}

// The Parse* functions over `bytes`; with `mapping` (the file `bytes` is) stored records are aliased.
absl::StatusOr<TensorMap> ParseTorchBinImpl(std::string_view bytes, std::string_view name_for_errors,
                                            const TorchBinLimits& limits, std::shared_ptr<const MappedFile> mapping) {
  return GuardedParse<TensorMap>(name_for_errors, [&] {
    return WithPickleRoot<TensorMap>(
        bytes, limits, /*opaque_unknown_globals=*/false,
        [](const PickleValue& root, TorchBinHandler& handler) { return ToTensorMap(root, handler, "the pickle"); },
        mapping);
  });
}

absl::StatusOr<std::map<std::string, TensorMap>> ParseTorchBinStateDictsImpl(
    std::string_view bytes, std::string_view name_for_errors, const std::vector<StateDictSelection>& selections,
    const TorchBinLimits& limits, std::shared_ptr<const MappedFile> mapping) {
  using Result = std::map<std::string, TensorMap>;
  return GuardedParse<Result>(name_for_errors, [&] {
    return WithPickleRoot<Result>(
        bytes, limits, /*opaque_unknown_globals=*/true,
        [&](const PickleValue& root, TorchBinHandler& handler) -> absl::StatusOr<Result> {
          if (!root.is(Kind::kDict)) {
            return absl::InvalidArgumentError(
                absl::StrCat("the pickle holds ", PickleDebugString(root, 1), ", not a checkpoint dict"));
          }
          Result out;
          for (const StateDictSelection& selection : selections) {
            const PickleValue* entry = DictEntry(root, selection.key);
            if (entry == nullptr) continue;
            VQD_ASSIGN_OR_RETURN(out[selection.key],
                                 ToTensorMap(*entry, handler, absl::StrCat("entry \"", selection.key, "\""),
                                             selection.prefixes));
          }
          return out;
        },
        mapping);
  });
}

absl::StatusOr<torch::Tensor> ParseTorchBinTensorImpl(std::string_view bytes, std::string_view name_for_errors,
                                                      const TorchBinLimits& limits,
                                                      std::shared_ptr<const MappedFile> mapping) {
  return GuardedParse<torch::Tensor>(name_for_errors, [&] {
    return WithPickleRoot<torch::Tensor>(
        bytes, limits, /*opaque_unknown_globals=*/false,
        [](const PickleValue& root, TorchBinHandler& handler) -> absl::StatusOr<torch::Tensor> {
          if (!IsTensor(root)) {
            return absl::InvalidArgumentError(
                absl::StrCat("the pickle holds ", PickleDebugString(root, 1), ", not a tensor"));
          }
          return handler.Materialize(root);
        },
        mapping);
  });
}

}  // namespace

absl::StatusOr<TensorMap> ParseTorchBin(std::string_view bytes, std::string_view name_for_errors,
                                        const TorchBinLimits& limits) {
  return ParseTorchBinImpl(bytes, name_for_errors, limits, nullptr);
}

absl::StatusOr<TensorMap> ReadTorchBin(const std::string& path, const TorchBinLimits& limits) {
  VQD_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  return ParseTorchBinImpl(mapping->bytes(), path, limits, mapping);
}

absl::StatusOr<std::map<std::string, TensorMap>> ParseTorchBinStateDicts(
    std::string_view bytes, std::string_view name_for_errors, const std::vector<StateDictSelection>& selections,
    const TorchBinLimits& limits) {
  return ParseTorchBinStateDictsImpl(bytes, name_for_errors, selections, limits, nullptr);
}

absl::StatusOr<std::map<std::string, TensorMap>> ReadTorchBinStateDicts(
    const std::string& path, const std::vector<StateDictSelection>& selections, const TorchBinLimits& limits) {
  VQD_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  return ParseTorchBinStateDictsImpl(mapping->bytes(), path, selections, limits, mapping);
}

absl::StatusOr<torch::Tensor> ParseTorchBinTensor(std::string_view bytes, std::string_view name_for_errors,
                                                  const TorchBinLimits& limits) {
  return ParseTorchBinTensorImpl(bytes, name_for_errors, limits, nullptr);
}

absl::StatusOr<torch::Tensor> ReadTorchBinTensor(const std::string& path, const TorchBinLimits& limits) {
  VQD_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  return ParseTorchBinTensorImpl(mapping->bytes(), path, limits, mapping);
}

}  // namespace vqd::io
