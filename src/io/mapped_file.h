// A whole file mapped into memory, shared by everything that aliases its bytes (tensors built with
// from_blob hold a shared_ptr to it, so the mapping outlives the reader).
#pragma once

#include <memory>
#include <string>
#include <string_view>

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

 private:
  MappedFile(std::string path, void* data, size_t size) : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  void* data_;  // nullptr for an empty file (mmap refuses length 0).
  size_t size_;
};

}  // namespace vqd::io
