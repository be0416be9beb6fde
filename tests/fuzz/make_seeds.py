#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Standard library only. Every seed is small (well under a few KB) and deterministic, so running this
again reproduces the committed files byte for byte. Each corpus holds valid inputs and slightly
broken ones (truncated, out-of-range, wrong types); files named regress-* are reproducers of bugs
the fuzzers found, added by hand, and are left alone here.

    python3 tests/fuzz/make_seeds.py [--out DIR]
"""

import argparse
import io
import json
import os
import struct
import zipfile
import zlib

# ---------------------------------------------------------------------------------------------
# safetensors


def safetensors(tensors, metadata=None, pad=True, header_override=None):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header = {}
    data = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = header_override if header_override is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def safetensors_seeds():
    f32 = struct.pack("<6f", 0.0, 1.0, -2.5, 3.25, 1e-3, 6e4)
    f16 = struct.pack("<3e", 0.5, -1.0, 2.0)
    i64 = struct.pack("<2q", -1, 1 << 40)
    good = [
        ("weight", "F32", [2, 3], f32),
        ("ids", "I64", [2], i64),
        ("bias", "F16", [3], f16),
        ("mask", "BOOL", [4], bytes([0, 1, 1, 0])),
        ("empty", "U8", [0, 5], b""),
        ("scalar", "BF16", [], b"\x80\x3f"),
    ]
    # Python's safetensors sorts by element size; this order is the one the writer would use.
    seeds = {
        "valid": safetensors(good, {"format": "pt"}),
        "valid_no_metadata": safetensors(good[:2]),
        "all_dtypes": safetensors([
            ("f64", "F64", [1], struct.pack("<d", 1.5)),
            ("i64", "I64", [1], struct.pack("<q", -7)),
            ("f32", "F32", [1], struct.pack("<f", 2.0)),
            ("i32", "I32", [1], struct.pack("<i", -3)),
            ("f16", "F16", [1], struct.pack("<e", 0.25)),
            ("bf16", "BF16", [1], b"\x00\x40"),
            ("i16", "I16", [1], struct.pack("<h", 9)),
            ("i8", "I8", [1], b"\xff"),
            ("u8", "U8", [1], b"\x07"),
            ("bool", "BOOL", [1], b"\x01"),
        ]),
        # A 4-byte tensor at an odd offset (readers copy instead of aliasing).
        "misaligned": safetensors([("b", "U8", [1], b"\x01"), ("f", "F32", [1], struct.pack("<f", 1.0))]),
        # Two tensors over the same bytes, listed out of order, and trailing bytes.
        "overlapping": safetensors([], header_override=json.dumps({
            "b": {"dtype": "I32", "shape": [1], "data_offsets": [4, 8]},
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        }).encode()) + b"\x00" * 12,
        "truncated": safetensors(good, {"format": "pt"})[:-5],
        "header_too_long": struct.pack("<Q", 4096) + b'{"a":1}',
        "header_huge": struct.pack("<Q", 1 << 62) + b"{}",
        "short": b"\x08\x00\x00",
        "not_json": struct.pack("<Q", 8) + b"{not js}",
        "not_object": struct.pack("<Q", 8) + b"[1,2,3 ]",
        "bad_bool": safetensors([("m", "BOOL", [2], b"\x00\x02")]),
        "bad_dtype": safetensors([("x", "F8_E4M3", [1], b"\x00")]),
        "bad_metadata": safetensors([("x", "U8", [1], b"\x00")], {"n": 3}),
        "size_mismatch": safetensors([], header_override=b'{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}')
        + b"\x00" * 8,
        "offsets_outside": safetensors([], header_override=b'{"x":{"dtype":"U8","shape":[9],"data_offsets":[0,9]}}')
        + b"\x00" * 8,
        "negative_dim": safetensors([], header_override=b'{"x":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}'),
        "overflow_shape": safetensors(
            [], header_override=b'{"x":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}'),
        # Zero elements, but dimensions whose product (ignoring the 0) overflows.
        "zero_huge_dims": safetensors(
            [], header_override=b'{"x":{"dtype":"F64","shape":[0,9223372036854775807,9223372036854775807],'
            b'"data_offsets":[0,0]}}'),
        # Nested values where numbers belong: error messages must not recurse into them (a header nested
        # a million levels deep used to overflow the stack; that reproducer is 2 MB, so these stand in).
        "nested_shape": safetensors(
            [], header_override=b'{"x":{"dtype":"U8","shape":[1,' + b"[" * 40 + b"]" * 40 + b'],"data_offsets":[0,1]}}')
        + b"\x00",
        "nested_offsets": safetensors(
            [], header_override=b'{"x":{"dtype":"U8","shape":[1],"data_offsets":' + b"[" * 40 + b"]" * 40 + b"}}"),
    }
    return seeds


# ---------------------------------------------------------------------------------------------
# torch.save checkpoints: a zip whose data.pkl is a protocol-2 pickle, as torch.save writes it.


class Pickle:
    def __init__(self):
        self.out = bytearray()
        self.memo = 0

    def op(self, code, payload=b""):
        self.out += bytes([code]) if isinstance(code, int) else code
        self.out += payload
        return self

    def proto(self, v):
        return self.op(0x80, bytes([v]))

    def put(self):  # BINPUT of the next memo index, as Python's pickler does
        self.op(b"q", bytes([self.memo]))
        self.memo += 1
        return self

    def get(self, i):
        return self.op(b"h", bytes([i]))

    def mark(self):
        return self.op(b"(")

    def int(self, v):
        if 0 <= v < 256:
            return self.op(b"K", bytes([v]))
        if 0 <= v < 65536:
            return self.op(b"M", struct.pack("<H", v))
        if -(1 << 31) <= v < (1 << 31):
            return self.op(b"J", struct.pack("<i", v))
        return self.op(0x8A, bytes([8]) + struct.pack("<q", v))

    def str(self, s):
        b = s.encode()
        return self.op(b"X", struct.pack("<I", len(b)) + b).put()

    def short_str(self, s):
        b = s.encode()
        return self.op(0x8C, bytes([len(b)]) + b)

    def glob(self, module, name):
        return self.op(b"c", module.encode() + b"\n" + name.encode() + b"\n").put()

    def tensor(self, storage_type, key, numel, offset, size, stride, od_memo=0):
        """_rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict())."""
        self.glob("torch._utils", "_rebuild_tensor_v2")
        self.mark()
        self.mark().str("storage").glob("torch", storage_type).str(key).str("cpu").int(numel).op(b"t").put()
        self.op(b"Q")
        self.int(offset)
        self.tuple_of(size)
        self.tuple_of(stride)
        self.op(0x89)  # requires_grad = False
        self.get(od_memo).op(b")").op(b"R").put()  # backward_hooks = OrderedDict()
        return self.op(b"t").put().op(b"R").put()

    def tuple_of(self, values):
        if len(values) == 0:
            return self.op(b")")
        if len(values) <= 3:
            for v in values:
                self.int(v)
            return self.op(bytes([0x84 + len(values)])).put()
        self.mark()
        for v in values:
            self.int(v)
        return self.op(b"t").put()

    def bytes(self):
        return bytes(self.out)


def state_dict_pickle(entries, metadata=True):
    """entries: list of (key, writer callback appending the value)."""
    p = Pickle().proto(2)
    p.glob("collections", "OrderedDict").op(b")").op(b"R").put()  # memo 0: OrderedDict, 1: the dict
    p.mark()
    for key, emit in entries:
        p.str(key)
        emit(p)
    p.op(b"u")
    if metadata:
        # dict._metadata = OrderedDict(); _metadata[""] = {"version": 1}  (set through BUILD)
        p.op(b"}").put().str("_metadata").get(0).op(b")").op(b"R").put()
        p.str("").op(b"}").put().str("version").int(1).op(b"s").op(b"s")
        p.op(b"s").op(b"b")
    return p.op(b".").bytes()


def good_pickle():
    return state_dict_pickle([
        ("w", lambda p: p.tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1])),
        ("t", lambda p: p.tensor("FloatStorage", "0", 6, 0, [3, 2], [1, 3])),  # transposed view
        ("tail", lambda p: p.tensor("FloatStorage", "0", 6, 4, [2], [1])),
        ("h", lambda p: p.tensor("HalfStorage", "1", 2, 0, [2], [1])),
        ("ids", lambda p: p.tensor("LongStorage", "2", 2, 0, [1, 2], [2, 1])),
        ("m", lambda p: p.tensor("BoolStorage", "3", 3, 0, [3], [1])),
        ("e", lambda p: p.tensor("FloatStorage", "4", 0, 0, [0, 5], [5, 1])),
        ("p", lambda p: (p.glob("torch._utils", "_rebuild_parameter"),
                         p.tensor("FloatStorage", "0", 6, 0, [6], [1]),
                         p.op(0x88), p.get(0).op(b")").op(b"R"), p.op(0x87), p.op(b"R"))),
    ])


def good_records():
    return {
        "data.pkl": good_pickle(),
        "data/0": struct.pack("<6f", 0, 1, 2, 3, 4, 5),
        "data/1": struct.pack("<2e", 0.5, -3.0),
        "data/2": struct.pack("<2q", 7, -8),
        "data/3": bytes([1, 0, 1]),
        "data/4": b"",
    }


def torch_zip(records, folder="archive", version=b"3\n", compress=False, extra=None):
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in records.items():
            info = zipfile.ZipInfo(f"{folder}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            z.writestr(info, data)
        if extra:
            for name, data in extra.items():
                info = zipfile.ZipInfo(f"{folder}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
                z.writestr(info, data)
        if version is not None:
            info = zipfile.ZipInfo(f"{folder}/version", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, version)  # always stored: the reader requires it
    return buf.getvalue()


def raw_zip(records):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in records.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def pkl_framed(records, compress=False):
    """The fuzz_torch_bin framing: data.pkl, then data/0, data/1, ... separated by "\\n=====\\n"."""
    parts = [records["data.pkl"]]
    i = 0
    while f"data/{i}" in records:
        parts.append(records[f"data/{i}"])
        i += 1
    return (b"PKLZ\n" if compress else b"PKL\n") + b"\n=====\n".join(parts)


def torch_bin_seeds():
    good = good_records()

    def with_pickle(pkl, **kw):
        r = dict(good)
        r["data.pkl"] = pkl
        return r

    one = lambda storage, key, numel, offset, size, stride: state_dict_pickle(  # noqa: E731
        [("x", lambda p: p.tensor(storage, key, numel, offset, size, stride))], metadata=False)

    # Protocol 4 features: FRAME, SHORT_BINUNICODE, STACK_GLOBAL, MEMOIZE, BINPERSID.
    p4 = Pickle().proto(4)
    p4.op(0x95, struct.pack("<Q", 0))
    p4.short_str("collections").op(0x94).short_str("OrderedDict").op(0x94).op(0x93).op(0x94)
    p4.op(b")").op(b"R").op(0x94).short_str("x").op(0x94)
    p4.short_str("torch._utils").short_str("_rebuild_tensor_v2").op(0x93).op(0x94)
    p4.mark().mark().short_str("storage").short_str("torch").short_str("FloatStorage").op(0x93)
    p4.short_str("0").short_str("cpu").int(6).op(b"t").op(b"Q").int(0).int(6).op(0x85).int(1).op(0x85)
    p4.op(0x89).get(2).op(b")").op(b"R").op(b"t").op(b"R").op(b"s").op(b".")

    # The _metadata state carries bytes built by _codecs.encode (as protocol 2 pickles bytes).
    codecs = Pickle().proto(2)
    codecs.glob("collections", "OrderedDict").op(b")").op(b"R").put()
    codecs.str("x").tensor("FloatStorage", "0", 6, 0, [6], [1])
    codecs.op(b"s").op(b"}").put().str("blob").glob("_codecs", "encode").str("\u00e9\u00ff").str("latin1")
    codecs.op(0x86).put().op(b"R").put().op(b"s").op(b"b").op(b".")

    os_system = Pickle().proto(2).glob("os", "system").str("true").op(0x85).op(b"R").op(b".").bytes()

    seeds = {
        "valid.bin": torch_zip(good),
        "valid_deflated.bin": torch_zip(good, compress=True),
        "valid_new_layout.bin": torch_zip(good, version=None,
                                          extra={".data/version": b"3\n", ".data/serialization_id": b"1234567890",
                                                 "byteorder": b"little"}),
        "protocol4.bin": torch_zip({"data.pkl": p4.bytes(), "data/0": good["data/0"]}),
        "codecs.bin": torch_zip({"data.pkl": codecs.bytes(), "data/0": good["data/0"]}),
        "forbidden_global.bin": torch_zip(with_pickle(os_system)),
        "missing_record.bin": torch_zip({k: v for k, v in good.items() if k != "data/1"}),
        "bad_version.bin": torch_zip(good, version=b"99\n"),
        "not_in_folder.bin": raw_zip({"data.pkl": good["data.pkl"], "version": b"3\n"}),
        "truncated.bin": torch_zip(good)[:-30],
        "legacy.bin": b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.",
        # Framed form (fuzz_torch_bin zips these itself).
        "valid.pkl": pkl_framed(good),
        "valid_deflated.pkl": pkl_framed(good, compress=True),
        "protocol4.pkl": pkl_framed({"data.pkl": p4.bytes(), "data/0": good["data/0"]}),
        "codecs.pkl": pkl_framed({"data.pkl": codecs.bytes(), "data/0": good["data/0"]}),
        "out_of_range.pkl": pkl_framed(with_pickle(one("FloatStorage", "0", 6, 0, [2, 3], [4, 1]))),
        "stride0.pkl": pkl_framed(with_pickle(one("FloatStorage", "0", 6, 0, [1 << 20, 1 << 20], [0, 0]))),
        "zero_huge_dims.pkl": pkl_framed(with_pickle(
            one("FloatStorage", "0", 6, 0, [0, (1 << 62), (1 << 62)], [1, 1, 1]))),
        "bad_bool.pkl": pkl_framed(dict(with_pickle(one("BoolStorage", "0", 2, 0, [2], [1])), **{"data/0": b"\x00\x05"})),
        "storage_twice.pkl": pkl_framed(with_pickle(state_dict_pickle([
            ("a", lambda p: p.tensor("FloatStorage", "0", 6, 0, [6], [1])),
            ("b", lambda p: p.tensor("IntStorage", "0", 6, 0, [6], [1]))], metadata=False))),
        "forbidden_global.pkl": pkl_framed(with_pickle(os_system)),
        "truncated.pkl": pkl_framed(with_pickle(good["data.pkl"][:-9])),
    }
    return seeds


# ---------------------------------------------------------------------------------------------
# Tokenizer: prompts (fuzz_tokenizer) and tokenizer folders (fuzz_tokenizer_files).


def tokenizer_seeds():
    prompts = {
        "plain": "a photo of a cat",
        "caption": "A black and white photo of an old car parked on the street at night.",
        "specials": "<|startoftext|>a dog<|endoftext|> <|ENDOFTEXT|> hello!!",
        "contractions": "it's the dog's bone, isn't it? we'll see; I'D say THEY'RE here",
        "numbers": "12345 apples, 3.14 pies and 1,000,000 cats",
        "whitespace": "  tabs\tand\nnew\r\nlines \u00a0 nbsp\u3000ideographic   ",
        "unicode": "caf\u00e9 na\u0308ive \u0130stanbul \u03a3\u0399\u03a3\u03a5\u03a6\u039f\u03a3 \u00df \ufb01",
        "cjk_emoji": "\u4e00\u5f20\u732b\u7684\u7167\u7247 \U0001F431\U0001F436 \u2764\ufe0f",
        "long": " ".join(["a photo of a red car on the road"] * 12),
        "punct": "!!!???...,,,;;;:::---___((()))[[[]]]{{{}}}<<<>>>@@@###$$$%%%^^^&&&***",
    }
    seeds = {name: text.encode() for name, text in prompts.items()}
    seeds["invalid_utf8"] = b"a \xff\xfe cat \xc3\x28 \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 \xc0\xaf end"
    seeds["control"] = bytes(range(0, 32)) + b"\x7f cat"
    seeds["empty"] = b""
    return seeds


def byte_char(b):
    """GPT-2 bytes_to_unicode for one byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    if b in printable:
        return chr(b)
    n = sum(1 for x in range(b) if x not in printable)
    return chr(256 + n)


def tiny_vocab():
    chars = [byte_char(ord(c)) for c in "!',.0123456789abcdefghijklmnopqrstuvwxyz"]
    tokens = chars + [c + "</w>" for c in chars]
    merges = [("p", "h"), ("ph", "o"), ("t", "o</w>"), ("pho", "to</w>"), ("c", "a"), ("ca", "t</w>"),
              ("o", "f</w>"), ("t", "h"), ("th", "e</w>"), ("d", "o"), ("do", "g</w>")]
    for a, b in merges:
        tokens.append(a + b)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return vocab, merges


def frame(tokenizer_json=b"", vocab_json=b"", merges_txt=b"", config=b"", special_map=b""):
    return b"\n=====\n".join([tokenizer_json, vocab_json, merges_txt, config, special_map])


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def tokenizer_files_seeds():
    vocab, merges = tiny_vocab()
    config = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
              "pad_token": "!", "model_max_length": 77, "tokenizer_class": "CLIPTokenizer"}
    special_map = {"bos_token": {"content": "<|startoftext|>", "lstrip": False},
                   "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"}
    merges_txt = ("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges)).encode()
    tok_json = {"version": "1.0",
                "added_tokens": [{"id": len(vocab) - 2, "content": "<|startoftext|>", "special": True},
                                 {"id": len(vocab) - 1, "content": "<|endoftext|>", "special": True}],
                "model": {"type": "BPE", "end_of_word_suffix": "</w>", "vocab": vocab,
                          "merges": [f"{a} {b}" for a, b in merges]}}
    tok_json_pairs = json.loads(json.dumps(tok_json))
    tok_json_pairs["model"]["merges"] = [[a, b] for a, b in merges]
    tok_json_pairs["added_tokens"].append({"id": 1000, "content": "[IMG]", "special": False})

    def with_config(**changes):
        c = dict(config)
        c.update(changes)
        return dumps({k: v for k, v in c.items() if v is not None})

    bad_vocab = dict(vocab)
    bad_vocab["zz"] = 3  # id used twice
    seeds = {
        "vocab_merges": frame(b"", dumps(vocab), merges_txt, dumps(config), dumps(special_map)),
        "vocab_merges_crlf": frame(b"", dumps(vocab), merges_txt.replace(b"\n", b"\r\n"), dumps(config)),
        "tokenizer_json": frame(dumps(tok_json), b"", b"", dumps(config)),
        "tokenizer_json_pairs": frame(dumps(tok_json_pairs), b"", b"", dumps(config), dumps(special_map)),
        "short_max_length": frame(b"", dumps(vocab), merges_txt, with_config(model_max_length=5)),
        "max_length_1": frame(dumps(tok_json), b"", b"", with_config(model_max_length=1)),
        "bad_max_length": frame(b"", dumps(vocab), merges_txt, with_config(model_max_length=0)),
        "duplicate_id": frame(b"", dumps(bad_vocab), merges_txt, dumps(config)),
        "negative_id": frame(b"", dumps({"a": -1}), b"", dumps(config)),
        "missing_eos": frame(b"", dumps(vocab), merges_txt, with_config(eos_token="<eos>")),
        "no_config": frame(b"", dumps(vocab), merges_txt),
        "bad_merge_line": frame(b"", dumps(vocab), b"#version: 0.2\na b c\n", dumps(config)),
        "wordpiece": frame(dumps({"model": {"type": "WordPiece", "vocab": vocab, "merges": []}}), b"", b"",
                           dumps(config)),
        "special_object_no_content": frame(b"", dumps(vocab), merges_txt, dumps(config),
                                           dumps({"pad_token": {"lstrip": True}})),
        "not_json": frame(b"", b"{\"a\": 0,", merges_txt, dumps(config)),
    }
    return seeds


# ---------------------------------------------------------------------------------------------
# GenerateRequest protobufs (vqdiffusion.v1): hand-encoded wire format.


def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(num, v):
    return varint(num << 3 | 0) + varint(v)


def field_bytes(num, b):
    return varint(num << 3 | 2) + varint(len(b)) + b


def field_float(num, f):
    return varint(num << 3 | 5) + struct.pack("<f", f)


def request(prompt=None, num_images=None, steps=None, guidance=None, truncation=None, seed=None,
            progress=None, priority=None, request_id=None, raw_prompt=None):
    out = b""
    if prompt is not None:
        out += field_bytes(1, prompt.encode())
    if raw_prompt is not None:
        out += field_bytes(1, raw_prompt)
    if num_images is not None:
        out += field_varint(2, num_images)
    if steps is not None:
        out += field_varint(3, steps)
    if guidance is not None:
        out += field_float(4, guidance)
    if truncation is not None:
        out += field_float(5, truncation)
    if seed is not None:
        out += field_varint(6, seed)
    if progress is not None:
        out += field_varint(7, progress)
    if priority is not None:
        out += field_varint(8, priority)  # int32: negative values are 10-byte varints
    if request_id is not None:
        out += field_bytes(9, request_id.encode())
    return out


def solid_png(width, height, value):
    """An 8-bit RGB PNG of one colour (a few hundred bytes even at 256x256)."""
    row = b"\x00" + bytes([value]) * (3 * width)
    idat = zlib.compress(row * height, 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def request_seeds():
    nan = struct.unpack("<f", b"\x00\x00\xc0\x7f")[0]
    return {
        "empty": b"",
        "full": request("a photo of a cat", 2, 50, 5.0, 0.86, 42, 10, 3, "client-req-1"),
        "no_guidance": request("a red car", 16, 100, 1.0, 1.0, 7),
        "zero_values": request("", 0, 0, 0.0, 0.0, 0, 0, 0, ""),
        "too_many_steps": request("x", steps=101),
        "too_many_images": request("x", num_images=17),
        "rows_over_batch": request("x", num_images=16, guidance=5.0),
        "guidance_nan": request("x", guidance=nan),
        "guidance_negative": request("x", guidance=-1.0),
        "guidance_inf": request("x", guidance=float("inf")),
        "truncation_over_one": request("x", truncation=1.5),
        "progress_over_limit": request("x", progress=1001),
        "negative_priority": request("x", priority=-5),
        "huge_values": request("x", num_images=0xFFFFFFFF, steps=0xFFFFFFFF, seed=(1 << 64) - 1),
        "bad_request_id": request("x", request_id="has space"),
        "long_request_id": request("x", request_id="r" * 129),
        "long_prompt": request("cat " * 1025),
        "unicode_prompt": request("caf\u00e9 \U0001F431 \u4e00"),
        "invalid_utf8_prompt": request(raw_prompt=b"\xff\xfe"),
        "unknown_field": request("x") + field_varint(15, 1) + field_bytes(100, b"zz"),
        # Fields 30-36: time_stride, prior_rule, prior_weight, init_image, strength, mask, preview_interval.
        "strided": request("x") + field_varint(30, 4),
        "strided_with_steps": request("x", steps=25) + field_varint(30, 4),
        "purity": request("x") + field_varint(31, 2) + field_float(32, 1.0),
        "weight_without_purity": request("x") + field_varint(31, 1) + field_float(32, 1.0),
        "edit": request("x") + field_bytes(33, solid_png(256, 256, 90)) + field_float(34, 0.3),
        "inpaint": (request("x") + field_bytes(33, solid_png(256, 256, 90)) + field_bytes(35, solid_png(256, 256, 255))
                    + field_varint(30, 3) + field_varint(36, 5)),
        "mask_not_binary": request("x") + field_bytes(33, solid_png(256, 256, 90)) + field_bytes(35, solid_png(256, 256, 7)),
        "edit_wrong_size": request("x") + field_bytes(33, solid_png(64, 32, 1)),
        "mask_without_image": request("x") + field_bytes(35, solid_png(256, 256, 0)),
    }


# ---------------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
    args = parser.parse_args()
    corpora = {
        "fuzz_safetensors": safetensors_seeds(),
        "fuzz_torch_bin": torch_bin_seeds(),
        "fuzz_tokenizer": tokenizer_seeds(),
        "fuzz_tokenizer_files": tokenizer_files_seeds(),
        "fuzz_request_validation": request_seeds(),
    }
    for target, seeds in corpora.items():
        folder = os.path.join(args.out, target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
        total = sum(len(d) for d in seeds.values())
        print(f"{target}: {len(seeds)} seeds, {total} bytes")


if __name__ == "__main__":
    main()
