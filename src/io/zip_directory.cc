#include "io/zip_directory.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "io/checked_math.h"

namespace vqd::io {
namespace {

constexpr uint32_t kEndOfDirectorySignature = 0x06054b50;
constexpr uint32_t kZip64EndOfDirectorySignature = 0x06064b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kDirectoryEntrySignature = 0x02014b50;
constexpr uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr size_t kEndOfDirectorySize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndOfDirectorySize = 56;
constexpr size_t kDirectoryEntrySize = 46;
constexpr size_t kLocalHeaderSize = 30;

// Bounds-checked little-endian reads; a failed read leaves `ok` false.
class Cursor {
 public:
  Cursor(std::string_view bytes, uint64_t pos) : bytes_(bytes), pos_(pos) {}
  template <typename T>
  T Get() {
    T value = 0;
    if (!ok_ || pos_ > bytes_.size() || bytes_.size() - pos_ < sizeof(T)) {
      ok_ = false;
      return 0;
    }
    for (size_t i = 0; i < sizeof(T); ++i) {
      value |= static_cast<T>(static_cast<uint8_t>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += sizeof(T);
    return value;
  }
  std::string_view Take(uint64_t n) {
    if (!ok_ || pos_ > bytes_.size() || bytes_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  bool ok() const { return ok_; }

 private:
  std::string_view bytes_;
  uint64_t pos_;
  bool ok_ = true;
};

// Entry names come from the file: keep them short in messages.
std::string Shorten(const std::string& name) { return name.size() > 64 ? name.substr(0, 64) + "..." : name; }

absl::Status Corrupt(std::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt zip archive: ", std::string(what)));
}

// Replaces 0xFFFF.. placeholders with the zip64 extended information extra field's values.
bool ApplyZip64Extra(std::string_view extra, ZipEntry* entry, bool need_uncompressed, bool need_compressed,
                     bool need_offset) {
  Cursor cursor(extra, 0);
  while (cursor.ok()) {
    const uint16_t id = cursor.Get<uint16_t>();
    const uint16_t size = cursor.Get<uint16_t>();
    std::string_view body = cursor.Take(size);
    if (!cursor.ok()) return false;
    if (id != 0x0001) continue;
    Cursor field(body, 0);
    if (need_uncompressed) entry->uncompressed_size = field.Get<uint64_t>();
    if (need_compressed) entry->compressed_size = field.Get<uint64_t>();
    if (need_offset) entry->local_header_offset = field.Get<uint64_t>();
    return field.ok();
  }
  return false;
}

}  // namespace

absl::StatusOr<std::vector<ZipEntry>> ReadZipDirectory(std::string_view bytes, size_t max_entries) {
  if (bytes.size() < kEndOfDirectorySize) {
    return Corrupt(absl::StrCat(bytes.size(), " bytes is too short for a zip archive"));
  }
  // The end-of-directory record sits in the last 22 + 65535 (comment) bytes; search backwards.
  const size_t lowest = bytes.size() > kEndOfDirectorySize + 0xFFFF ? bytes.size() - kEndOfDirectorySize - 0xFFFF : 0;
  size_t eocd = std::string_view::npos;
  for (size_t pos = bytes.size() - kEndOfDirectorySize + 1; pos-- > lowest;) {
    if (Cursor(bytes, pos).Get<uint32_t>() == kEndOfDirectorySignature) {
      eocd = pos;
      break;
    }
  }
  if (eocd == std::string_view::npos) return Corrupt("end of central directory not found (truncated or not a zip)");

  Cursor end(bytes, eocd + 4);
  const uint16_t disk = end.Get<uint16_t>();
  const uint16_t directory_disk = end.Get<uint16_t>();
  end.Get<uint16_t>();  // Entries on this disk.
  uint64_t count = end.Get<uint16_t>();
  uint64_t directory_size = end.Get<uint32_t>();
  uint64_t directory_offset = end.Get<uint32_t>();
  if (disk != 0 || directory_disk != 0) return absl::InvalidArgumentError("multi-disk zip archives are not supported");

  if (count == 0xFFFF || directory_size == 0xFFFFFFFF || directory_offset == 0xFFFFFFFF) {
    if (eocd < kZip64LocatorSize) return Corrupt("zip64 end of directory locator missing");
    Cursor locator(bytes, eocd - kZip64LocatorSize);
    if (locator.Get<uint32_t>() != kZip64LocatorSignature) return Corrupt("zip64 end of directory locator missing");
    locator.Get<uint32_t>();
    const uint64_t record_offset = locator.Get<uint64_t>();
    Cursor record(bytes, record_offset);
    if (record.Get<uint32_t>() != kZip64EndOfDirectorySignature || !record.ok() ||
        record_offset > bytes.size() - kZip64EndOfDirectorySize) {
      return Corrupt("zip64 end of directory record missing");
    }
    record.Get<uint64_t>();  // Record size.
    record.Get<uint16_t>();  // Version made by.
    record.Get<uint16_t>();  // Version needed.
    record.Get<uint32_t>();  // Disk.
    record.Get<uint32_t>();  // Directory disk.
    record.Get<uint64_t>();  // Entries on this disk.
    count = record.Get<uint64_t>();
    directory_size = record.Get<uint64_t>();
    directory_offset = record.Get<uint64_t>();
    if (!record.ok()) return Corrupt("zip64 end of directory record truncated");
  }
  uint64_t directory_end = 0;
  if (!CheckedAdd(directory_offset, directory_size, &directory_end) || directory_end > bytes.size()) {
    return Corrupt("central directory lies outside the file");
  }
  if (count > max_entries)
    return absl::InvalidArgumentError(absl::StrCat("zip archive has ", count, " entries (limit ", max_entries, ")"));
  // Each entry needs at least 46 bytes, which bounds `count` by the directory size.
  if (count > directory_size / kDirectoryEntrySize) return Corrupt("entry count does not fit the central directory");

  std::vector<ZipEntry> entries;
  entries.reserve(count);
  const std::string_view directory = bytes.substr(directory_offset, directory_size);
  Cursor cursor(directory, 0);
  for (uint64_t i = 0; i < count; ++i) {
    if (cursor.Get<uint32_t>() != kDirectoryEntrySignature)
      return Corrupt(absl::StrCat("bad central directory entry ", i));
    ZipEntry entry;
    cursor.Get<uint16_t>();  // Version made by.
    cursor.Get<uint16_t>();  // Version needed.
    entry.flags = cursor.Get<uint16_t>();
    entry.method = cursor.Get<uint16_t>();
    cursor.Get<uint32_t>();  // Time and date.
    entry.crc32 = cursor.Get<uint32_t>();
    entry.compressed_size = cursor.Get<uint32_t>();
    entry.uncompressed_size = cursor.Get<uint32_t>();
    const uint16_t name_size = cursor.Get<uint16_t>();
    const uint16_t extra_size = cursor.Get<uint16_t>();
    const uint16_t comment_size = cursor.Get<uint16_t>();
    cursor.Get<uint16_t>();  // Disk.
    cursor.Get<uint16_t>();  // Internal attributes.
    const uint32_t external_attributes = cursor.Get<uint32_t>();
    entry.local_header_offset = cursor.Get<uint32_t>();
    entry.name = std::string(cursor.Take(name_size));
    const std::string_view extra = cursor.Take(extra_size);
    cursor.Take(comment_size);
    if (!cursor.ok()) return Corrupt(absl::StrCat("central directory entry ", i, " is truncated"));
    entry.is_directory = (!entry.name.empty() && entry.name.back() == '/') || (external_attributes & 0x10) != 0;

    const bool need_uncompressed = entry.uncompressed_size == 0xFFFFFFFF;
    const bool need_compressed = entry.compressed_size == 0xFFFFFFFF;
    const bool need_offset = entry.local_header_offset == 0xFFFFFFFF;
    if ((need_uncompressed || need_compressed || need_offset) &&
        !ApplyZip64Extra(extra, &entry, need_uncompressed, need_compressed, need_offset)) {
      return Corrupt(absl::StrCat("entry \"", Shorten(entry.name), "\" lacks its zip64 sizes"));
    }
    // The data starts after the local header, whose name and extra field may differ in length
    // from the directory's copy; read them to locate the data and check it lies inside the file.
    Cursor local(bytes, entry.local_header_offset);
    if (local.Get<uint32_t>() != kLocalHeaderSignature) {
      return Corrupt(absl::StrCat("entry \"", Shorten(entry.name), "\" has no local header at offset ",
                                  entry.local_header_offset));
    }
    local.Take(kLocalHeaderSize - 4 - 4);
    const uint16_t local_name_size = local.Get<uint16_t>();
    const uint16_t local_extra_size = local.Get<uint16_t>();
    if (!local.ok()) return Corrupt(absl::StrCat("entry \"", Shorten(entry.name), "\" has a truncated local header"));
    uint64_t data_end = 0;
    if (!CheckedAdd<uint64_t>(entry.local_header_offset, kLocalHeaderSize + local_name_size + local_extra_size,
                              &entry.data_offset) ||
        !CheckedAdd(entry.data_offset, entry.compressed_size, &data_end) || data_end > bytes.size()) {
      return Corrupt(absl::StrCat("entry \"", Shorten(entry.name), "\" extends past the end of the file"));
    }
    if (entry.uncompressed_size != 0 && entry.compressed_size == 0) {
      return Corrupt(absl::StrCat("entry \"", Shorten(entry.name), "\" claims data but has none"));
    }
    if (entry.method == 0 && entry.compressed_size != entry.uncompressed_size) {
      return Corrupt(
          absl::StrCat("stored entry \"", Shorten(entry.name), "\" has different compressed and uncompressed sizes"));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

uint32_t ZipCrc32(std::string_view bytes) {
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : bytes) {
    crc ^= static_cast<uint8_t>(c);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

}  // namespace vqd::io
