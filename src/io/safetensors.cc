#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/torch_util.h"
#include "io/checked_math.h"
#include "io/file_util.h"
#include "io/mapped_file.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; add byte swapping");

namespace vqd::io {
namespace {

struct DtypeEntry {
  const char* name;
  torch::Dtype dtype;
};
constexpr DtypeEntry kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

const DtypeEntry* FindDtype(std::string_view name) {
  for (const DtypeEntry& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const char* SafetensorsDtypeName(torch::Dtype dtype) {
  for (const DtypeEntry& d : kDtypes) {
    if (dtype == d.dtype) return d.name;
  }
  return nullptr;
}

// One validated header entry: its bytes are data[begin, end) and end - begin == numel * elem_size.
struct Entry {
  std::string name;
  torch::Dtype dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

struct Header {
  std::vector<Entry> entries;
  SafetensorsMetadata metadata;
  std::string_view data;  // The data section.
};

absl::Status Invalid(const std::string& file, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": invalid safetensors file: ", what));
}

// Reads a non-negative JSON integer that fits in int64 (all sizes and offsets do).
bool GetNonNegative(const nlohmann::json& value, uint64_t* out) {
  if (!value.is_number_unsigned()) return false;  // Negative numbers parse as number_integer.
  const uint64_t v = value.get<uint64_t>();
  if (v > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = v;
  return true;
}

// A header value for error messages. Not value.dump() alone: it recurses once per nesting level, so
// a hostile header nested a million levels deep would overflow the stack.
std::string Describe(const nlohmann::json& value) {
  if (value.is_structured()) {
    for (const nlohmann::json& item : value) {
      if (item.is_structured()) return absl::StrCat("a nested ", value.type_name());
    }
  }
  return value.dump().substr(0, 100);
}

absl::StatusOr<Entry> ParseEntry(const std::string& file, const std::string& name, const nlohmann::json& desc,
                                 uint64_t data_size) {
  const std::string where = absl::StrCat("tensor \"", name, "\"");
  if (!desc.is_object())
    return Invalid(file, absl::StrCat(where, " is described by a ", desc.type_name(), ", not an object"));
  const auto dtype_it = desc.find("dtype");
  const auto shape_it = desc.find("shape");
  const auto offsets_it = desc.find("data_offsets");
  if (dtype_it == desc.end() || shape_it == desc.end() || offsets_it == desc.end()) {
    return Invalid(file, absl::StrCat(where, " needs \"dtype\", \"shape\" and \"data_offsets\""));
  }
  Entry entry;
  entry.name = name;
  if (!dtype_it->is_string()) return Invalid(file, absl::StrCat(where, ": \"dtype\" must be a string"));
  const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
  const DtypeEntry* dtype = FindDtype(dtype_name);
  if (dtype == nullptr) {
    return Invalid(file, absl::StrCat(where, ": unsupported dtype \"", dtype_name.substr(0, 32),
                                      "\" (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"));
  }
  entry.dtype = dtype->dtype;

  if (!shape_it->is_array()) return Invalid(file, absl::StrCat(where, ": \"shape\" must be an array"));
  if (shape_it->size() > 64)
    return Invalid(file, absl::StrCat(where, ": ", shape_it->size(), " dimensions (limit 64)"));
  for (const nlohmann::json& dim : *shape_it) {
    uint64_t d = 0;
    if (!GetNonNegative(dim, &d)) {
      return Invalid(file, absl::StrCat(where, ": shape entries must be non-negative integers, got ", Describe(dim)));
    }
    entry.shape.push_back(static_cast<int64_t>(d));
  }
  int64_t numel = 0;
  int64_t nbytes = 0;
  if (!CheckedNumel(entry.shape, &numel) ||
      !CheckedMul<int64_t>(numel, static_cast<int64_t>(c10::elementSize(entry.dtype)), &nbytes)) {
    return Invalid(file, absl::StrCat(where, ": shape ", ShapeString(entry.shape), " of ", dtype_name,
                                      " overflows 64-bit byte counts"));
  }

  if (!offsets_it->is_array() || offsets_it->size() != 2 || !GetNonNegative((*offsets_it)[0], &entry.begin) ||
      !GetNonNegative((*offsets_it)[1], &entry.end)) {
    return Invalid(file, absl::StrCat(where, ": \"data_offsets\" must be two non-negative integers, got ",
                                      Describe(*offsets_it)));
  }
  if (entry.begin > entry.end || entry.end > data_size) {
    return Invalid(file, absl::StrCat(where, ": data_offsets [", entry.begin, ", ", entry.end,
                                      ") are outside the data section of ", data_size, " bytes"));
  }
  if (entry.end - entry.begin != static_cast<uint64_t>(nbytes)) {
    return Invalid(file, absl::StrCat(where, ": shape ", ShapeString(entry.shape), " of ", dtype_name, " needs ",
                                      nbytes, " bytes but data_offsets [", entry.begin, ", ", entry.end, ") span ",
                                      entry.end - entry.begin));
  }
  return entry;
}

absl::StatusOr<Header> ParseHeader(std::string_view bytes, const std::string& file) {
  if (bytes.size() < 8) {
    return absl::DataLossError(absl::StrCat(file, ": invalid safetensors file: ", bytes.size(),
                                            " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);  // Little-endian (checked at compile time).
  if (header_size > kMaxSafetensorsHeaderBytes) {
    return Invalid(file, absl::StrCat("header length ", header_size, " exceeds the limit of ",
                                      kMaxSafetensorsHeaderBytes, " bytes"));
  }
  if (header_size > bytes.size() - 8) {
    return absl::DataLossError(absl::StrCat(file, ": invalid safetensors file: header length ", header_size,
                                            " exceeds the ", bytes.size() - 8,
                                            " bytes that follow it (truncated or not safetensors)"));
  }
  const std::string_view text = bytes.substr(8, header_size);
  if (text.empty() || text.front() != '{') return Invalid(file, "header does not start with '{'");

  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return Invalid(file, absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!json.is_object()) return Invalid(file, "header is not a JSON object");

  Header header;
  header.data = bytes.substr(8 + header_size);
  for (const auto& [name, desc] : json.items()) {
    if (name == "__metadata__") {
      if (!desc.is_object()) return Invalid(file, "\"__metadata__\" must be an object");
      for (const auto& [key, value] : desc.items()) {
        if (!value.is_string()) {
          return Invalid(
              file, absl::StrCat("\"__metadata__\" value of \"", key, "\" must be a string, got ", value.type_name()));
        }
        header.metadata.emplace(key, value.get<std::string>());
      }
      continue;
    }
    VQD_ASSIGN_OR_RETURN(Entry entry, ParseEntry(file, name, desc, header.data.size()));
    header.entries.push_back(std::move(entry));
  }
  return header;
}

// torch's bool must hold 0 or 1; any other byte is undefined behaviour in kernels.
absl::Status CheckBoolBytes(const std::string& file, const Entry& entry, const char* data) {
  for (uint64_t i = 0; i < entry.end - entry.begin; ++i) {
    if (static_cast<unsigned char>(data[i]) > 1) {
      return Invalid(file, absl::StrCat("tensor \"", entry.name, "\": BOOL byte ", i, " is ",
                                        static_cast<int>(static_cast<unsigned char>(data[i])), ", not 0 or 1"));
    }
  }
  return absl::OkStatus();
}

torch::Tensor CopyTensor(const Entry& entry, const char* data) {
  torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype));
  if (entry.end > entry.begin) std::memcpy(tensor.data_ptr(), data, entry.end - entry.begin);
  return tensor;
}

// Builds the map, aliasing `mapping` where alignment allows it (null mapping: always copy).
absl::StatusOr<TensorMap> BuildTensors(const std::string& file, const Header& header,
                                       const std::shared_ptr<const MappedFile>& mapping) {
  for (const Entry& entry : header.entries) {
    if (entry.dtype == torch::kBool) VQD_RETURN_IF_ERROR(CheckBoolBytes(file, entry, header.data.data() + entry.begin));
  }
  // A tensor's pages leave the process when it dies (so a loader that drops each tensor once copied
  // never holds the whole file), unless another entry aliases its bytes.
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Entry& entry : header.entries) ranges.emplace_back(entry.begin, entry.end);
  const bool release = RangesDisjoint(std::move(ranges));
  // Parsing the header may have mapped the page-cache folio around it; nothing aliases the data yet.
  if (mapping != nullptr && release) {
    mapping->ReleasePages(header.data.data() - mapping->bytes().data(), header.data.size());
  }
  TensorMap tensors;
  VQD_RETURN_IF_ERROR(CatchTorch(absl::StrCat(file, ": building tensors"), [&] {
    for (const Entry& entry : header.entries) {
      const char* data = header.data.data() + entry.begin;
      const bool aligned = reinterpret_cast<uintptr_t>(data) % c10::elementSize(entry.dtype) == 0;
      if (mapping != nullptr && aligned && entry.end > entry.begin) {
        const size_t offset = data - mapping->bytes().data();
        const size_t length = entry.end - entry.begin;
        char* mutable_data = mapping->mutable_data() + offset;
        // The deleter's copy of `mapping` keeps the file mapped while the tensor's storage lives.
        tensors.emplace(entry.name, torch::from_blob(
                                        mutable_data, entry.shape,
                                        [mapping, offset, length, release](void*) {
                                          if (release) mapping->ReleasePages(offset, length);
                                        },
                                        torch::TensorOptions().dtype(entry.dtype)));
      } else {
        tensors.emplace(entry.name, CopyTensor(entry, data));
      }
    }
  }));
  return tensors;
}

struct Serialized {
  std::string header;                  // Length prefix + padded JSON.
  std::vector<torch::Tensor> ordered;  // Contiguous CPU tensors in data order.
};

absl::StatusOr<Serialized> BuildSerialized(const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  Serialized out;
  std::vector<std::pair<std::string, torch::Tensor>> ordered;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") return absl::InvalidArgumentError("a tensor cannot be named \"__metadata__\"");
    if (!tensor.defined()) return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" is undefined"));
    if (SafetensorsDtypeName(tensor.scalar_type()) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" has dtype ",
                                                     vqd::DtypeName(tensor.scalar_type()),
                                                     ", which safetensors cannot hold here"));
    }
    torch::Tensor cpu;
    VQD_RETURN_IF_ERROR(CatchTorch(absl::StrCat("copying tensor \"", name, "\" to the CPU"),
                                   [&cpu, &t = tensor] { cpu = t.detach().to(torch::kCPU).contiguous(); }));
    ordered.emplace_back(name, std::move(cpu));
  }
  // Larger elements first keeps every offset a multiple of its element size (the data section
  // starts 8-aligned), which lets readers alias the bytes; the Python library does the same.
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const auto& a, const auto& b) { return a.second.element_size() > b.second.element_size(); });

  nlohmann::json json = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, tensor] : ordered) {
    const uint64_t nbytes = tensor.numel() * tensor.element_size();
    json[name] = {{"dtype", SafetensorsDtypeName(tensor.scalar_type())},
                  {"shape", tensor.sizes().vec()},
                  {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    out.ordered.push_back(tensor);
  }
  if (!metadata.empty()) json["__metadata__"] = metadata;
  std::string text;
  try {
    text = json.dump();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot encode the safetensors header: ", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  const uint64_t length = text.size();
  out.header.assign(reinterpret_cast<const char*>(&length), 8);
  out.header += text;
  return out;
}

std::string_view TensorBytes(const torch::Tensor& tensor) {
  return {static_cast<const char*>(tensor.data_ptr()), static_cast<size_t>(tensor.numel() * tensor.element_size())};
}

}  // namespace

absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path, SafetensorsMetadata* metadata) {
  VQD_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> mapping, MappedFile::Open(path));
  VQD_ASSIGN_OR_RETURN(Header header, ParseHeader(mapping->bytes(), path));
  VQD_ASSIGN_OR_RETURN(TensorMap tensors, BuildTensors(path, header, mapping));
  if (metadata != nullptr) *metadata = std::move(header.metadata);
  return tensors;
}

absl::StatusOr<TensorMap> ParseSafetensors(std::string_view bytes, std::string_view name_for_errors,
                                           SafetensorsMetadata* metadata) {
  const std::string name(name_for_errors);
  VQD_ASSIGN_OR_RETURN(Header header, ParseHeader(bytes, name));
  VQD_ASSIGN_OR_RETURN(TensorMap tensors, BuildTensors(name, header, nullptr));
  if (metadata != nullptr) *metadata = std::move(header.metadata);
  return tensors;
}

absl::StatusOr<std::string> SerializeSafetensors(const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  VQD_ASSIGN_OR_RETURN(Serialized serialized, BuildSerialized(tensors, metadata));
  std::string out = std::move(serialized.header);
  for (const torch::Tensor& tensor : serialized.ordered) out += TensorBytes(tensor);
  return out;
}

absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors, const SafetensorsMetadata& metadata) {
  VQD_ASSIGN_OR_RETURN(Serialized serialized, Annotate(BuildSerialized(tensors, metadata), path));
  std::vector<std::string_view> parts = {serialized.header};
  for (const torch::Tensor& tensor : serialized.ordered) parts.push_back(TensorBytes(tensor));
  return WriteFileParts(path, parts);
}

}  // namespace vqd::io
