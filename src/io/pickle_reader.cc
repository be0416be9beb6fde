#include "io/pickle_reader.h"

#include <cstring>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace vqd::io {
namespace {

using Kind = PickleValue::Kind;

// Longest "module\n" or "name\n" line of a GLOBAL opcode; real names are far shorter.
constexpr size_t kMaxGlobalLine = 1024;

class Machine {
 public:
  Machine(std::string_view bytes, PickleHandler& handler, PickleArena& arena, const PickleLimits& limits)
      : bytes_(bytes), handler_(handler), arena_(arena), limits_(limits) {}

  absl::StatusOr<PickleValue*> Run() {
    if (bytes_.size() > limits_.max_bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("pickle is ", bytes_.size(), " bytes, more than the limit of ", limits_.max_bytes));
    }
    while (pos_ < bytes_.size()) {
      op_pos_ = pos_;
      op_ = static_cast<uint8_t>(bytes_[pos_++]);
      if (op_ == '.') {  // STOP
        VQD_ASSIGN_OR_RETURN(PickleValue * result, Pop());
        return result;
      }
      VQD_RETURN_IF_ERROR(Step());
    }
    return absl::DataLossError(absl::StrCat("pickle: ended after ", bytes_.size(), " bytes without STOP (truncated?)"));
  }

 private:
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("pickle: %s (opcode 0x%02x at byte %d)", std::string(what), op_, op_pos_));
  }
  // Prefixes a handler's error with the position, keeping its code.
  absl::Status Locate(const absl::Status& status) const {
    return absl::Status(status.code(), absl::StrFormat("pickle: %s (opcode 0x%02x at byte %d)",
                                                       std::string(status.message()), op_, op_pos_));
  }

  absl::StatusOr<std::string_view> Read(uint64_t n) {
    if (n > bytes_.size() - pos_) {
      return absl::DataLossError(
          absl::StrFormat("pickle: opcode 0x%02x at byte %d needs %d more bytes but only %d remain (truncated?)", op_,
                          op_pos_, n, bytes_.size() - pos_));
    }
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  template <typename T>
  absl::StatusOr<T> ReadLittleEndian() {
    VQD_ASSIGN_OR_RETURN(std::string_view raw, Read(sizeof(T)));
    T value = 0;
    for (size_t i = 0; i < sizeof(T); ++i) {
      value |= static_cast<T>(static_cast<uint8_t>(raw[i])) << (8 * i);
    }
    return value;
  }

  absl::StatusOr<std::string_view> ReadLine() {
    const size_t end = bytes_.find('\n', pos_);
    if (end == std::string_view::npos)
      return absl::DataLossError(Error("unterminated GLOBAL name (truncated?)").message());
    if (end - pos_ > kMaxGlobalLine) return Error("GLOBAL name is too long");
    std::string_view line = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return line;
  }

  absl::StatusOr<PickleValue*> New(Kind kind) {
    if (arena_.size() >= limits_.max_values) return Error("too many values");
    return arena_.New(kind);
  }

  size_t MarkBase() const { return marks_.empty() ? 0 : marks_.back(); }

  absl::Status Push(PickleValue* value) {
    if (stack_.size() >= limits_.max_stack) return Error("stack is too deep");
    stack_.push_back(value);
    return absl::OkStatus();
  }

  absl::StatusOr<PickleValue*> Pop() {
    // Values below the innermost MARK belong to the enclosing frame.
    if (stack_.size() <= MarkBase()) return Error("stack underflow");
    PickleValue* value = stack_.back();
    stack_.pop_back();
    return value;
  }

  absl::StatusOr<PickleValue*> Top() {
    if (stack_.size() <= MarkBase()) return Error("stack underflow");
    return stack_.back();
  }

  // Removes and returns everything above the innermost MARK, and the MARK itself.
  absl::StatusOr<std::vector<PickleValue*>> PopMark() {
    if (marks_.empty()) return Error("no MARK on the stack");
    const size_t base = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(base), stack_.end());
    stack_.resize(base);
    return items;
  }

  absl::Status PushNewString(Kind kind, uint64_t length) {
    if (length > limits_.max_string_bytes) {
      return Error(absl::StrCat("string of ", length, " bytes exceeds the limit of ", limits_.max_string_bytes));
    }
    VQD_ASSIGN_OR_RETURN(std::string_view raw, Read(length));
    VQD_ASSIGN_OR_RETURN(PickleValue * value, New(kind));
    value->text.assign(raw.data(), raw.size());
    return Push(value);
  }

  absl::Status PushInt(int64_t v) {
    VQD_ASSIGN_OR_RETURN(PickleValue * value, New(Kind::kInt));
    value->integer = v;
    return Push(value);
  }

  absl::Status PushBool(bool b) {
    VQD_ASSIGN_OR_RETURN(PickleValue * value, New(Kind::kBool));
    value->boolean = b;
    return Push(value);
  }

  // LONG1 / LONG4: little-endian two's complement of `n` bytes. Only values that fit int64 are needed.
  absl::Status PushLong(uint64_t n) {
    if (n > 8) return Error(absl::StrCat("integer of ", n, " bytes does not fit in 64 bits"));
    VQD_ASSIGN_OR_RETURN(std::string_view raw, Read(n));
    uint64_t bits = 0;
    for (size_t i = 0; i < n; ++i) bits |= static_cast<uint64_t>(static_cast<uint8_t>(raw[i])) << (8 * i);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(raw[n - 1]) & 0x80)) bits |= ~uint64_t{0} << (8 * n);  // Sign-extend.
    return PushInt(static_cast<int64_t>(bits));
  }

  absl::Status PushContainer(Kind kind, std::vector<PickleValue*> items) {
    if (items.size() > limits_.max_container_items) return Error("container has too many items");
    VQD_ASSIGN_OR_RETURN(PickleValue * value, New(kind));
    value->items = std::move(items);
    return Push(value);
  }

  absl::Status PushGlobal(const std::string& module, const std::string& name) {
    absl::StatusOr<PickleValue*> value = handler_.Global(arena_, module, name);
    if (!value.ok()) return Locate(value.status());
    return Push(*value);
  }

  absl::Status Call(const PickleValue& callable, const PickleValue& args) {
    if (!args.is(Kind::kTuple))
      return Error(absl::StrCat("call arguments must be a tuple, got ", PickleKindName(args.kind)));
    absl::StatusOr<PickleValue*> result = handler_.Call(arena_, callable, args);
    if (!result.ok()) return Locate(result.status());
    return Push(*result);
  }

  absl::Status Memoize(uint64_t index) {
    VQD_ASSIGN_OR_RETURN(PickleValue * top, Top());
    if (memo_.size() >= limits_.max_memo && memo_.find(index) == memo_.end()) return Error("memo is too large");
    memo_[index] = top;
    return absl::OkStatus();
  }

  absl::Status PushMemo(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) return Error(absl::StrCat("memo entry ", index, " is not defined"));
    return Push(it->second);
  }

  absl::Status AddItems(PickleValue* container, const std::vector<PickleValue*>& items, Kind expected) {
    if (!container->is(expected)) {
      return Error(absl::StrCat("cannot add items to a ", PickleKindName(container->kind), ", expected ",
                                PickleKindName(expected)));
    }
    if (expected == Kind::kDict && items.size() % 2 != 0) return Error("odd number of items for a dict");
    if (container->items.size() + items.size() > limits_.max_container_items)
      return Error("container has too many items");
    container->items.insert(container->items.end(), items.begin(), items.end());
    return absl::OkStatus();
  }

  absl::Status Step() {
    switch (op_) {
      case 0x80: {  // PROTO
        VQD_ASSIGN_OR_RETURN(uint8_t version, ReadLittleEndian<uint8_t>());
        if (version < 2 || version > 5) return Error(absl::StrCat("unsupported pickle protocol ", version));
        return absl::OkStatus();
      }
      case 0x95: {  // FRAME: a length hint for buffered readers; the data follows inline.
        VQD_ASSIGN_OR_RETURN(uint64_t length, ReadLittleEndian<uint64_t>());
        (void)length;
        return absl::OkStatus();
      }
      case '(':  // MARK
        if (marks_.size() >= limits_.max_marks) return Error("too many nested MARKs");
        marks_.push_back(stack_.size());
        return absl::OkStatus();
      case '0':  // POP: the top value, or the innermost MARK when nothing lies above it.
        if (stack_.size() > MarkBase()) {
          stack_.pop_back();
          return absl::OkStatus();
        }
        return PopMark().status();
      case '1':  // POP_MARK
        return PopMark().status();
      case '2': {  // DUP
        VQD_ASSIGN_OR_RETURN(PickleValue * top, Top());
        return Push(top);
      }
      case 'N': {  // NONE
        VQD_ASSIGN_OR_RETURN(PickleValue * value, New(Kind::kNone));
        return Push(value);
      }
      case 0x88:
        return PushBool(true);  // NEWTRUE
      case 0x89:
        return PushBool(false);  // NEWFALSE
      case 'J': {                // BININT
        VQD_ASSIGN_OR_RETURN(uint32_t v, ReadLittleEndian<uint32_t>());
        return PushInt(static_cast<int32_t>(v));
      }
      case 'K': {  // BININT1
        VQD_ASSIGN_OR_RETURN(uint8_t v, ReadLittleEndian<uint8_t>());
        return PushInt(v);
      }
      case 'M': {  // BININT2
        VQD_ASSIGN_OR_RETURN(uint16_t v, ReadLittleEndian<uint16_t>());
        return PushInt(v);
      }
      case 0x8a: {  // LONG1
        VQD_ASSIGN_OR_RETURN(uint8_t n, ReadLittleEndian<uint8_t>());
        return PushLong(n);
      }
      case 0x8b: {  // LONG4
        VQD_ASSIGN_OR_RETURN(uint32_t n, ReadLittleEndian<uint32_t>());
        return PushLong(n);
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double.
        VQD_ASSIGN_OR_RETURN(std::string_view raw, Read(8));
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(raw[i]);
        double d;
        std::memcpy(&d, &bits, sizeof(d));
        VQD_ASSIGN_OR_RETURN(PickleValue * value, New(Kind::kFloat));
        value->number = d;
        return Push(value);
      }
      case 'X': {  // BINUNICODE
        VQD_ASSIGN_OR_RETURN(uint32_t n, ReadLittleEndian<uint32_t>());
        return PushNewString(Kind::kString, n);
      }
      case 0x8c: {  // SHORT_BINUNICODE
        VQD_ASSIGN_OR_RETURN(uint8_t n, ReadLittleEndian<uint8_t>());
        return PushNewString(Kind::kString, n);
      }
      case 0x8d: {  // BINUNICODE8
        VQD_ASSIGN_OR_RETURN(uint64_t n, ReadLittleEndian<uint64_t>());
        return PushNewString(Kind::kString, n);
      }
      case 'B': {  // BINBYTES
        VQD_ASSIGN_OR_RETURN(uint32_t n, ReadLittleEndian<uint32_t>());
        return PushNewString(Kind::kBytes, n);
      }
      case 'C': {  // SHORT_BINBYTES
        VQD_ASSIGN_OR_RETURN(uint8_t n, ReadLittleEndian<uint8_t>());
        return PushNewString(Kind::kBytes, n);
      }
      case 0x8e:    // BINBYTES8
      case 0x96: {  // BYTEARRAY8
        VQD_ASSIGN_OR_RETURN(uint64_t n, ReadLittleEndian<uint64_t>());
        return PushNewString(Kind::kBytes, n);
      }
      case ')':
        return PushContainer(Kind::kTuple, {});  // EMPTY_TUPLE
      case ']':
        return PushContainer(Kind::kList, {});  // EMPTY_LIST
      case '}':
        return PushContainer(Kind::kDict, {});  // EMPTY_DICT
      case 't': {                               // TUPLE
        VQD_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopMark());
        return PushContainer(Kind::kTuple, std::move(items));
      }
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        const size_t n = op_ - 0x84;
        std::vector<PickleValue*> items(n);
        for (size_t i = n; i > 0; --i) {
          VQD_ASSIGN_OR_RETURN(items[i - 1], Pop());
        }
        return PushContainer(Kind::kTuple, std::move(items));
      }
      case 'l': {  // LIST
        VQD_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopMark());
        return PushContainer(Kind::kList, std::move(items));
      }
      case 'd': {  // DICT
        VQD_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopMark());
        if (items.size() % 2 != 0) return Error("odd number of items for a dict");
        return PushContainer(Kind::kDict, std::move(items));
      }
      case 'a': {  // APPEND
        VQD_ASSIGN_OR_RETURN(PickleValue * value, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * list, Top());
        return AddItems(list, {value}, Kind::kList);
      }
      case 'e': {  // APPENDS
        VQD_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopMark());
        VQD_ASSIGN_OR_RETURN(PickleValue * list, Top());
        return AddItems(list, items, Kind::kList);
      }
      case 's': {  // SETITEM
        VQD_ASSIGN_OR_RETURN(PickleValue * value, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * key, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * dict, Top());
        return AddItems(dict, {key, value}, Kind::kDict);
      }
      case 'u': {  // SETITEMS
        VQD_ASSIGN_OR_RETURN(std::vector<PickleValue*> items, PopMark());
        VQD_ASSIGN_OR_RETURN(PickleValue * dict, Top());
        return AddItems(dict, items, Kind::kDict);
      }
      case 'q': {  // BINPUT
        VQD_ASSIGN_OR_RETURN(uint8_t index, ReadLittleEndian<uint8_t>());
        return Memoize(index);
      }
      case 'r': {  // LONG_BINPUT
        VQD_ASSIGN_OR_RETURN(uint32_t index, ReadLittleEndian<uint32_t>());
        return Memoize(index);
      }
      case 0x94:  // MEMOIZE
        return Memoize(memo_.size());
      case 'h': {  // BINGET
        VQD_ASSIGN_OR_RETURN(uint8_t index, ReadLittleEndian<uint8_t>());
        return PushMemo(index);
      }
      case 'j': {  // LONG_BINGET
        VQD_ASSIGN_OR_RETURN(uint32_t index, ReadLittleEndian<uint32_t>());
        return PushMemo(index);
      }
      case 'c': {  // GLOBAL
        VQD_ASSIGN_OR_RETURN(std::string_view module, ReadLine());
        VQD_ASSIGN_OR_RETURN(std::string_view name, ReadLine());
        return PushGlobal(std::string(module), std::string(name));
      }
      case 0x93: {  // STACK_GLOBAL
        VQD_ASSIGN_OR_RETURN(PickleValue * name, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * module, Pop());
        if (!module->is(Kind::kString) || !name->is(Kind::kString)) return Error("STACK_GLOBAL needs two strings");
        if (module->text.size() > kMaxGlobalLine || name->text.size() > kMaxGlobalLine)
          return Error("global name is too long");
        return PushGlobal(module->text, name->text);
      }
      case 'R': {  // REDUCE
        VQD_ASSIGN_OR_RETURN(PickleValue * args, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * callable, Pop());
        return Call(*callable, *args);
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        VQD_ASSIGN_OR_RETURN(PickleValue * args, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * cls, Pop());
        return Call(*cls, *args);
      }
      case 0x92: {  // NEWOBJ_EX: only without keyword arguments.
        VQD_ASSIGN_OR_RETURN(PickleValue * kwargs, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * args, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * cls, Pop());
        if (!kwargs->is(Kind::kDict) || !kwargs->items.empty()) return Error("NEWOBJ_EX with keyword arguments");
        return Call(*cls, *args);
      }
      case 'b': {  // BUILD
        VQD_ASSIGN_OR_RETURN(PickleValue * state, Pop());
        VQD_ASSIGN_OR_RETURN(PickleValue * obj, Top());
        const absl::Status status = handler_.Build(*obj, *state);
        return status.ok() ? status : Locate(status);
      }
      case 'Q': {  // BINPERSID
        VQD_ASSIGN_OR_RETURN(PickleValue * pid, Pop());
        absl::StatusOr<PickleValue*> value = handler_.PersistentLoad(arena_, *pid);
        if (!value.ok()) return Locate(value.status());
        return Push(*value);
      }
      default:
        return Error(absl::StrFormat("unsupported opcode '%c'", op_ >= 0x20 && op_ < 0x7f ? op_ : '?'));
    }
  }

  std::string_view bytes_;
  PickleHandler& handler_;
  PickleArena& arena_;
  const PickleLimits& limits_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  uint8_t op_ = 0;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;  // Stack sizes at each open MARK.
  std::unordered_map<uint64_t, PickleValue*> memo_;
};

void AppendDebugString(const PickleValue& value, int depth, std::string* out) {
  switch (value.kind) {
    case Kind::kNone:
      out->append("None");
      return;
    case Kind::kBool:
      out->append(value.boolean ? "True" : "False");
      return;
    case Kind::kInt:
      absl::StrAppend(out, value.integer);
      return;
    case Kind::kFloat:
      absl::StrAppend(out, value.number);
      return;
    case Kind::kString:
    case Kind::kBytes:
      // Escape control bytes: these strings come from the file and end up in logs.
      out->append(value.kind == Kind::kBytes ? "b'" : "'");
      for (const char c : std::string_view(value.text).substr(0, 64)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || (value.kind == Kind::kBytes && u >= 0x80)) {
          absl::StrAppendFormat(out, "\\x%02x", u);
        } else {
          out->push_back(c);
        }
      }
      out->append(value.text.size() > 64 ? "...'" : "'");
      return;
    case Kind::kGlobal:
      absl::StrAppend(out, value.text, ".", value.name);
      return;
    case Kind::kObject:
      absl::StrAppend(out, "<", value.name, ">");
      return;
    case Kind::kTuple:
    case Kind::kList:
    case Kind::kDict: {
      const char* open = value.kind == Kind::kTuple ? "(" : value.kind == Kind::kList ? "[" : "{";
      const char* close = value.kind == Kind::kTuple ? ")" : value.kind == Kind::kList ? "]" : "}";
      out->append(open);
      if (depth <= 0) {
        if (!value.items.empty()) out->append("...");
      } else {
        const size_t shown = std::min<size_t>(value.items.size(), 8);
        for (size_t i = 0; i < shown; ++i) {
          if (i > 0) out->append(value.kind == Kind::kDict && i % 2 == 1 ? ": " : ", ");
          AppendDebugString(*value.items[i], depth - 1, out);
        }
        if (shown < value.items.size()) out->append(", ...");
      }
      out->append(close);
      return;
    }
  }
}

}  // namespace

const char* PickleKindName(PickleValue::Kind kind) {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kObject:
      return "object";
  }
  return "?";
}

std::string PickleDebugString(const PickleValue& value, int max_depth) {
  std::string out;
  AppendDebugString(value, max_depth, &out);
  return out;
}

PickleValue* PickleArena::New(PickleValue::Kind kind) {
  values_.emplace_back();
  values_.back().kind = kind;
  return &values_.back();
}

absl::StatusOr<PickleValue*> RunPickle(std::string_view bytes, PickleHandler& handler, PickleArena& arena,
                                       const PickleLimits& limits) {
  return Machine(bytes, handler, arena, limits).Run();
}

}  // namespace vqd::io
