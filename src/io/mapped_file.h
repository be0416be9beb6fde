// A whole file mapped into memory, shared by everything that aliases its bytes (tensors built with
// from_blob hold a shared_ptr to it, so the mapping outlives the reader).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace vqd::io {

// Immutable once open; shared read-only between threads through shared_ptr<const MappedFile>.
class MappedFile {
 public:
  // Maps `path` copy-on-write (MAP_PRIVATE with write permission on a read-only descriptor): the
  // file itself is never modified, and an in-place op on an aliasing tensor copies the touched page
  // instead of faulting. Like any mapping, it assumes nobody truncates the file while it is mapped
  // (that would turn reads into SIGBUS); model files are written once, atomically.
  static absl::StatusOr<std::shared_ptr<const MappedFile>> Open(const std::string& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }
  // Writable view of the private mapping (for from_blob, which takes a non-const pointer).
  char* mutable_data() const { return static_cast<char*>(data_); }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops the whole pages inside bytes [offset, offset + length) from this process (MADV_DONTNEED):
  // loading calls it once a tensor's bytes are copied out, so that the file's pages do not stay
  // resident next to the weights they were copied into. Reading them again re-reads the file, and
  // copy-on-write changes to those pages are lost, so call it only for bytes nothing alive aliases.
  // Pages shared with bytes outside the range stay. A no-op for an empty or out-of-range request.
  void ReleasePages(size_t offset, size_t length) const;

 private:
  MappedFile(std::string path, void* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  void* data_;  // nullptr for an empty file (mmap refuses length 0).
  size_t size_;
};

// Whether no two of the byte ranges [begin, end) share a byte (empty ranges share none). Pages of a
// range may be released when its tensor dies only if no other tensor aliases its bytes.
bool RangesDisjoint(std::vector<std::pair<uint64_t, uint64_t>> ranges);

}  // namespace vqd::io
