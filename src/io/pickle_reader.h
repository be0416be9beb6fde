// A restricted Python pickle machine (protocols 2 to 5) for reading checkpoints written by
// torch.save. It builds plain values (None, bool, int, float, str, bytes, tuple, list, dict) and
// never runs code: every GLOBAL, REDUCE, NEWOBJ, BUILD and persistent id goes to a PickleHandler,
// which decides what a name means and refuses anything it does not know. Sizes, memo entries and
// the stack are bounded so that a hostile pickle cannot exhaust memory or crash the reader.
#pragma once

#include <any>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vqd::io {

struct PickleValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kTuple, kList, kDict, kGlobal, kObject };

  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0;
  std::string text;                 // kString (UTF-8), kBytes, kGlobal: module name.
  std::string name;                 // kGlobal: attribute name; kObject: type for error messages.
  std::vector<PickleValue*> items;  // kTuple, kList; kDict: key0, value0, key1, value1, ...
  std::any native;                  // kObject: whatever the handler built (a tensor, a storage).

  bool is(Kind k) const { return kind == k; }
  size_t dict_size() const { return items.size() / 2; }
};

// Short human-readable rendering for error messages ("tuple(str 'storage', global torch.FloatStorage, ...)").
std::string PickleDebugString(const PickleValue& value, int max_depth = 3);
const char* PickleKindName(PickleValue::Kind kind);

// Owns every value of one run. Values point at each other with raw pointers: a pickle can build
// cycles (a list appended to itself), which reference counting would leak. One run, one thread.
class PickleArena {
 public:
  PickleValue* New(PickleValue::Kind kind);
  size_t size() const { return values_.size(); }

 private:
  std::deque<PickleValue> values_;  // deque: addresses stay stable as it grows.
};

// Decides the meaning of everything in a pickle that could run code. Return errors for anything
// not explicitly allowed; the machine adds the byte offset. Called only from RunPickle's thread.
class PickleHandler {
 public:
  virtual ~PickleHandler() = default;
  // GLOBAL / STACK_GLOBAL "module.name": the value standing for it (typically a kGlobal).
  virtual absl::StatusOr<PickleValue*> Global(PickleArena& arena, const std::string& module,
                                              const std::string& name) = 0;
  // REDUCE and NEWOBJ: callable(*args). `args` is a tuple.
  virtual absl::StatusOr<PickleValue*> Call(PickleArena& arena, const PickleValue& callable,
                                            const PickleValue& args) = 0;
  // BINPERSID.
  virtual absl::StatusOr<PickleValue*> PersistentLoad(PickleArena& arena, const PickleValue& pid) = 0;
  // BUILD: obj.__setstate__(state) or obj.__dict__.update(state).
  virtual absl::Status Build(PickleValue& obj, const PickleValue& state) = 0;
};

struct PickleLimits {
  uint64_t max_bytes = 256ull << 20;  // Size of the pickle program.
  uint64_t max_string_bytes = 64ull << 20;
  size_t max_stack = 1u << 20;  // Values on the stack, all marks together.
  size_t max_marks = 1u << 16;  // Open MARKs (nesting).
  size_t max_memo = 1u << 22;
  size_t max_values = 1u << 24;           // Values in the arena.
  size_t max_container_items = 1u << 24;  // Elements of one tuple / list / dict.
};

// Runs `bytes` and returns the value STOP returns; it lives in `arena`. Errors are
// InvalidArgument (or DataLoss for a truncated program) and name the opcode and byte offset.
absl::StatusOr<PickleValue*> RunPickle(std::string_view bytes, PickleHandler& handler, PickleArena& arena,
                                       const PickleLimits& limits = {});

}  // namespace vqd::io
