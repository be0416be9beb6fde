#include "io/pickle_reader.h"

#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace vqd::io {
namespace {

using testing_util::PickleWriter;
using Kind = PickleValue::Kind;

// Records what the machine asks for; refuses globals outside "ok_module".
class RecordingHandler : public PickleHandler {
 public:
  absl::StatusOr<PickleValue*> Global(PickleArena& arena, const std::string& module, const std::string& name) override {
    if (module != "ok_module") return absl::InvalidArgumentError("forbidden global " + module + "." + name);
    PickleValue* v = arena.New(Kind::kGlobal);
    v->text = module;
    v->name = name;
    return v;
  }
  absl::StatusOr<PickleValue*> Call(PickleArena& arena, const PickleValue& callable, const PickleValue& args) override {
    ++calls;
    if (callable.name == "OrderedDict") return arena.New(Kind::kDict);
    PickleValue* v = arena.New(Kind::kObject);
    v->name = "called " + callable.name + " with " + std::to_string(args.items.size());
    return v;
  }
  absl::StatusOr<PickleValue*> PersistentLoad(PickleArena& arena, const PickleValue& pid) override {
    PickleValue* v = arena.New(Kind::kObject);
    v->name = "persistent " + PickleDebugString(pid);
    return v;
  }
  absl::Status Build(PickleValue& obj, const PickleValue& state) override {
    ++builds;
    return absl::OkStatus();
  }
  int calls = 0;
  int builds = 0;
};

absl::StatusOr<std::string> RunText(const std::string& bytes, const PickleLimits& limits = {}) {
  RecordingHandler handler;
  PickleArena arena;
  absl::StatusOr<PickleValue*> root = RunPickle(bytes, handler, arena, limits);
  if (!root.ok()) return root.status();
  return PickleDebugString(**root, 6);
}

TEST(PickleReader, PlainValues) {
  PickleWriter w;
  w.Proto(2)
      .Mark()
      .Int(0)
      .Int(255)
      .Int(256)
      .Int(65535)
      .Int(65536)
      .Int(-1)
      .Int(INT64_MIN)
      .Int(INT64_MAX)
      .Tuple()
      .Mark()
      .Bool(true)
      .Bool(false)
      .None()
      .Str("h\xc3\xa9llo")
      .ShortStr("short")
      .Op('C')
      .Byte(2)
      .Raw("\x01\xff")
      .Tuple()
      .TupleN(2)
      .Stop();
  EXPECT_EQ(*RunText(w.bytes()),
            "((0, 255, 256, 65535, 65536, -1, -9223372036854775808, 9223372036854775807), "
            "(True, False, None, 'h\xc3\xa9llo', 'short', b'\\x01\\xff'))");
}

TEST(PickleReader, Long1IsSignExtended) {
  PickleWriter w;
  w.Proto(2)
      .Mark()
      .Op(0x8a)
      .Byte(2)
      .Byte(0xff)
      .Byte(0x7f)
      .Op(0x8a)
      .Byte(2)
      .Byte(0x00)
      .Byte(0x80)
      .Op(0x8a)
      .Byte(0)
      .Tuple()
      .Stop();
  EXPECT_EQ(*RunText(w.bytes()), "(32767, -32768, 0)");
}

TEST(PickleReader, LongTooWideIsRejected) {
  PickleWriter w;
  w.Proto(2).Op(0x8a).Byte(9).Raw(std::string(9, '\1')).Stop();
  EXPECT_ERROR(RunText(w.bytes()), absl::StatusCode::kInvalidArgument, "does not fit in 64 bits");
}

TEST(PickleReader, BinFloatIsBigEndian) {
  PickleWriter w;
  w.Proto(2).Op('G').Raw(std::string("\x3f\xf8\0\0\0\0\0\0", 8)).Stop();  // 1.5
  EXPECT_EQ(*RunText(w.bytes()), "1.5");
}

TEST(PickleReader, ContainersAndMemo) {
  PickleWriter w;
  w.Proto(2)
      .EmptyDict()
      .Put(0)
      .Mark()
      .Str("a")
      .EmptyList()
      .Put(1)
      .Int(1)
      .Append()
      .Mark()
      .Int(2)
      .Int(3)
      .Appends()
      .Str("b")
      .Get(1)
      .SetItems()
      .Str("c")
      .Int(7)
      .TupleN(1)
      .SetItem()
      .Stop();
  EXPECT_EQ(*RunText(w.bytes()), "{'a': [1, 2, 3], 'b': [1, 2, 3], 'c': (7)}");
}

TEST(PickleReader, Protocol4FramesMemoizeAndStackGlobal) {
  PickleWriter w;
  w.Proto(4)
      .Op(0x95)
      .Le(20, 8)
      .ShortStr("ok_module")
      .Memoize()
      .ShortStr("f")
      .Memoize()
      .Op(0x93)
      .Memoize()
      .EmptyTuple()
      .Reduce()
      .Memoize()
      .Get(3)
      .TupleN(2)
      .Stop();
  EXPECT_EQ(*RunText(w.bytes()), "(<called f with 0>, <called f with 0>)");
}

TEST(PickleReader, HandlerSeesCallsPersistentIdsAndBuild) {
  RecordingHandler handler;
  PickleArena arena;
  PickleWriter w;
  w.Proto(2)
      .Global("ok_module", "cls")
      .Mark()
      .Str("storage")
      .Int(3)
      .Tuple()
      .BinPersId()
      .TupleN(1)
      .Reduce()
      .EmptyDict()
      .Build()
      .Stop();
  absl::StatusOr<PickleValue*> root = RunPickle(w.bytes(), handler, arena);
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ((*root)->name, "called cls with 1");
  EXPECT_EQ(handler.calls, 1);
  EXPECT_EQ(handler.builds, 1);
}

TEST(PickleReader, ForbiddenGlobalIsReportedWithPosition) {
  PickleWriter w;
  w.Proto(2).Global("os", "system").Str("rm -rf /").TupleN(1).Reduce().Stop();
  EXPECT_ERROR(RunText(w.bytes()), absl::StatusCode::kInvalidArgument, "forbidden global os.system");
  EXPECT_ERROR(RunText(w.bytes()), absl::StatusCode::kInvalidArgument, "at byte 2");
}

TEST(PickleReader, SelfReferencingListDoesNotHangOrLeak) {
  PickleWriter w;
  w.Proto(2).EmptyList().Put(0).Get(0).Append().Stop();
  absl::StatusOr<std::string> text = RunText(w.bytes());
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_TRUE(absl::StrContains(*text, "[[[")) << *text;
}

TEST(PickleReader, MalformedProgramsFail) {
  const std::string proto = "\x80\x02";
  using namespace std::string_literals;
  EXPECT_ERROR(RunText(""), absl::StatusCode::kDataLoss, "without STOP");
  EXPECT_ERROR(RunText(proto + "K"), absl::StatusCode::kDataLoss, "truncated");
  EXPECT_ERROR(RunText(proto + "."), absl::StatusCode::kInvalidArgument, "stack underflow");
  EXPECT_ERROR(RunText(proto + "t."), absl::StatusCode::kInvalidArgument, "no MARK");
  EXPECT_ERROR(RunText(proto + "h\x05."), absl::StatusCode::kInvalidArgument, "memo entry 5 is not defined");
  EXPECT_ERROR(RunText(proto + "q\x00."s), absl::StatusCode::kInvalidArgument, "stack underflow");
  EXPECT_ERROR(RunText(proto + "X\x64\x00\x00\x00"
                               "abc."s),
               absl::StatusCode::kDataLoss, "truncated");
  EXPECT_ERROR(RunText(proto + "K\x01K\x02s."), absl::StatusCode::kInvalidArgument, "stack underflow");
  EXPECT_ERROR(RunText(proto + "K\x01K\x02K\x03s."), absl::StatusCode::kInvalidArgument, "cannot add items to a int");
  EXPECT_ERROR(RunText(proto + "(K\x01"
                               "d."),
               absl::StatusCode::kInvalidArgument, "odd number");
  EXPECT_ERROR(RunText(proto + "I1\n."), absl::StatusCode::kInvalidArgument, "unsupported opcode 'I'");
  EXPECT_ERROR(RunText("\x80\x09."), absl::StatusCode::kInvalidArgument, "unsupported pickle protocol 9");
  EXPECT_ERROR(RunText(proto + "cno_newline"), absl::StatusCode::kDataLoss, "unterminated");
  // Values under a MARK are not reachable until the MARK is closed.
  EXPECT_ERROR(RunText(proto + "K\x01(a."), absl::StatusCode::kInvalidArgument, "stack underflow");
}

TEST(PickleReader, LimitsAreEnforced) {
  using namespace std::string_literals;
  PickleLimits limits;
  limits.max_marks = 10;
  EXPECT_ERROR(RunText("\x80\x02" + std::string(11, '('), limits), absl::StatusCode::kInvalidArgument, "nested MARKs");
  limits = {};
  limits.max_stack = 100;
  EXPECT_ERROR(RunText("\x80\x02" + std::string(101, 'N'), limits), absl::StatusCode::kInvalidArgument,
               "stack is too deep");
  limits = {};
  limits.max_string_bytes = 4;
  EXPECT_ERROR(RunText("\x80\x02X\x05\0\0\0hello."s, limits), absl::StatusCode::kInvalidArgument, "exceeds the limit");
  limits = {};
  limits.max_bytes = 3;
  EXPECT_ERROR(RunText("\x80\x02N.", limits), absl::StatusCode::kInvalidArgument, "more than the limit");
  limits = {};
  limits.max_memo = 2;
  EXPECT_ERROR(RunText("\x80\x02Nq\x00q\x01q\x02."s, limits), absl::StatusCode::kInvalidArgument, "memo is too large");
}

// Every single-byte corruption and every truncation of a representative program must end in a
// status, never a crash (run under ASan for the full effect).
TEST(PickleReader, CorruptionsNeverCrash) {
  PickleWriter w;
  w.Proto(2)
      .Global("ok_module", "OrderedDict")
      .EmptyTuple()
      .Reduce()
      .Put(0)
      .Mark()
      .Str("w")
      .Global("ok_module", "rebuild")
      .Mark()
      .Mark()
      .Str("storage")
      .Global("ok_module", "FloatStorage")
      .Str("0")
      .Str("cpu")
      .Int(6)
      .Tuple()
      .BinPersId()
      .Int(0)
      .Int(2)
      .Int(3)
      .TupleN(2)
      .Int(3)
      .Int(1)
      .TupleN(2)
      .Bool(false)
      .Get(0)
      .Tuple()
      .Reduce()
      .SetItems()
      .EmptyDict()
      .Str("_metadata")
      .Get(0)
      .SetItem()
      .Build()
      .Stop();
  ASSERT_TRUE(RunText(w.bytes()).ok()) << RunText(w.bytes()).status();
  const std::string& good = w.bytes();
  int failures = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (int value : {0x00, 0x01, 0x28, 0x2e, 0x71, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(value);
      if (!RunText(bad).ok()) ++failures;
    }
    if (!RunText(good.substr(0, i)).ok()) ++failures;
  }
  EXPECT_GT(failures, 0);
}

}  // namespace
}  // namespace vqd::io
