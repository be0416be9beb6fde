#!/usr/bin/env bash
# The offline tool as a user runs it: make-model, generate (PNGs and --save-tokens), tokenize,
# inspect, convert-official, and clear usage errors with a non-zero exit for wrong arguments.
#   vqd_cli_test.sh VQD PARITY_DIR
set -uo pipefail
VQD=$1 PARITY=${2:-}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=0
check() {  # check NAME EXPECTED_RC COMMAND...: runs the command, compares its exit code
  local name=$1 expected=$2
  shift 2
  "$@" > "$WORK/out" 2> "$WORK/err"
  local rc=$?
  if [[ $rc -ne $expected ]]; then
    echo "FAIL: $name: exit $rc, expected $expected"; sed 's/^/    /' "$WORK/err" | head -20; FAILED=1
  else
    echo "PASS: $name"
  fi
}
expect_in() {  # expect_in NAME FILE TEXT
  if grep -qF -- "$3" "$2"; then echo "PASS: $1"; else echo "FAIL: $1: \"$3\" not in output"; sed 's/^/    /' "$2" | head -20; FAILED=1; fi
}

check "make-model tiny" 0 "$VQD" make-model --preset tiny --out "$WORK/model" --seed 5
check "make-model refuses to overwrite" 1 "$VQD" make-model --preset tiny --out "$WORK/model"
expect_in "overwrite message" "$WORK/err" "already holds a model"
check "generate" 0 "$VQD" generate --model "$WORK/model" --prompt "a red car" --steps 5 --num-images 2 --seed 3 \
  --out "$WORK/img" --save-tokens "$WORK/tokens.json" --quiet
for i in 0 1; do
  if [[ "$(head -c 8 "$WORK/img-$i.png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]]; then
    echo "PASS: img-$i.png is a PNG"
  else
    echo "FAIL: img-$i.png is not a PNG"; FAILED=1
  fi
done
if python3 -c "import json,sys; t=json.load(open(sys.argv[1]))['tokens']; assert len(t)==2 and all(len(r)==64 and all(0<=x<16 for x in r) for r in t)" "$WORK/tokens.json"; then
  echo "PASS: --save-tokens writes two 8x8 grids of codes"
else
  echo "FAIL: --save-tokens output"; FAILED=1
fi
# The same seed gives the same grids.
check "generate again" 0 "$VQD" generate --model "$WORK/model" --prompt "a red car" --steps 5 --num-images 2 --seed 3 \
  --out "$WORK/again" --save-tokens "$WORK/tokens2.json" --quiet
if cmp -s "$WORK/tokens.json" "$WORK/tokens2.json"; then echo "PASS: same seed, same grids"; else echo "FAIL: same seed gave other grids"; FAILED=1; fi
check "inspect" 0 "$VQD" inspect "$WORK/model"
expect_in "inspect lists the transformer" "$WORK/out" "[transformer]"
expect_in "inspect counts parameters" "$WORK/out" "parameters"

# inspect checks the directory as the server's loader does: a broken copy exits 1 and the message
# names the file and the field or tensor.
broken() {  # broken NAME: a fresh copy of the tiny model to damage
  rm -rf "$WORK/broken-$1"; cp -r "$WORK/model" "$WORK/broken-$1"; echo "$WORK/broken-$1"
}
B=$(broken noweights)
rm "$B/vqvae/diffusion_pytorch_model.safetensors"
check "inspect: missing weights file" 1 "$VQD" inspect "$B"
expect_in "missing weights: component named" "$WORK/err" "no weights for component \"vqvae\" in $B/vqvae"
expect_in "missing weights: file named" "$WORK/err" "diffusion_pytorch_model.safetensors"
B=$(broken badconfig)
python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["num_layers"]="two"; json.dump(c,open(p,"w"))' \
  "$B/transformer/config.json"
check "inspect: wrong-typed config field" 1 "$VQD" inspect "$B"
expect_in "bad config: file and field named" "$WORK/err" "$B/transformer/config.json: key \"num_layers\" must be an integer"
B=$(broken range)
python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c["num_vq_embeddings"]=-16; json.dump(c,open(p,"w"))' \
  "$B/vqvae/config.json"
check "inspect: out-of-range config field" 1 "$VQD" inspect "$B"
expect_in "out of range: file, field and value named" "$WORK/err" "$B/vqvae/config.json: \"num_vq_embeddings\" must be at least 1, got -16"
B=$(broken reshaped)
# Same bytes, another shape: the file stays valid, the tensor no longer fits the config.
TENSOR=$(python3 - "$B/transformer/diffusion_pytorch_model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
name = next(k for k, v in sorted(header.items()) if k != "__metadata__" and len(v["shape"]) == 2 and v["shape"][0] % 2 == 0)
rows, cols = header[name]["shape"]
header[name]["shape"] = [rows // 2, cols * 2]
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
print(f"{name} expected [{rows}, {cols}] got [{rows // 2}, {cols * 2}]")
PY
)
check "inspect: reshaped tensor" 1 "$VQD" inspect "$B"
expect_in "reshaped: weights file named" "$WORK/err" "$B/transformer/diffusion_pytorch_model.safetensors"
expect_in "reshaped: tensor and shapes named" "$WORK/err" "$TENSOR"
B=$(broken dropped)
DROPPED=$(python3 - "$B/transformer/diffusion_pytorch_model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
# Drop the last tensor in the file, data included, so the file itself stays well-formed.
last = max((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][1])
begin = header.pop(last)["data_offsets"][0]
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(path, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:8 + n + begin])
print(last)
PY
)
check "inspect: dropped tensor" 1 "$VQD" inspect "$B"
expect_in "dropped: weights file named" "$WORK/err" "$B/transformer/diffusion_pytorch_model.safetensors"
expect_in "dropped: tensor named" "$WORK/err" "missing ($DROPPED)"
if [[ -n $PARITY && -d $PARITY/tiny/model ]]; then
  check "tokenize" 0 "$VQD" tokenize --model "$PARITY/tiny/model" "teddy bear playing in the pool"
  expect_in "tokenize ids" "$WORK/out" "[49406,11798,4298,1629,530,518,2831,49407,49407"
else
  echo "SKIPPED: tokenize against the parity tokenizer (no ../shared/parity)"
fi

# convert-official on the official-layout small models, then generate from them.
OFFICIAL=$PARITY/official
if [[ -n $PARITY && -d $OFFICIAL && -d $PARITY/tiny/model ]]; then
  check "convert-official imagenet" 0 "$VQD" convert-official --checkpoint "$OFFICIAL/imagenet/imagenet_small.pth" \
    --config "$OFFICIAL/imagenet/config.yaml" --out "$WORK/imagenet"
  expect_in "conversion summary" "$WORK/err" "class family, 2 layers x 16 (2 heads), 37 codes on a 4x4 grid"
  check "convert-official text" 0 "$VQD" convert-official --checkpoint "$OFFICIAL/text/text_small_learnable.pth" \
    --config "$OFFICIAL/text/config.yaml" --bpe "$PARITY/tiny/model/tokenizer/merges.txt" --out "$WORK/text"
  check "convert-official refuses a non-empty folder" 1 "$VQD" convert-official \
    --checkpoint "$OFFICIAL/imagenet/imagenet_small.pth" --config "$OFFICIAL/imagenet/config.yaml" --out "$WORK/imagenet"
  check "convert-official text needs --bpe" 2 "$VQD" convert-official \
    --checkpoint "$OFFICIAL/text/text_small_learnable.pth" --config "$OFFICIAL/text/config.yaml" --out "$WORK/nobpe"
  expect_in "--bpe named" "$WORK/err" "needs --bpe"
  check "convert-official with the other family's config" 1 "$VQD" convert-official \
    --checkpoint "$OFFICIAL/text/text_small_learnable.pth" --config "$OFFICIAL/imagenet/config.yaml" \
    --vqgan-config "$OFFICIAL/text/taming_gumbel_f8_small.yaml" --out "$WORK/mixed"
  [[ -e $WORK/mixed/model_index.json ]] && { echo "FAIL: a failed conversion left a model behind"; FAILED=1; }
  check "inspect converted" 0 "$VQD" inspect "$WORK/imagenet"
  expect_in "inspect: conditioning" "$WORK/out" "conditioning: class_label"
  expect_in "inspect: official defaults" "$WORK/out" "sampler: official, default guidance 1, default truncation 0.86"
  # The official run of sample case 0 (label 3, seed 1212, two images), with the model's defaults.
  check "generate --class-label" 0 "$VQD" generate --model "$WORK/imagenet" --class-label 3 --seed 1212 --num-images 2 \
    --out "$WORK/cls" --save-tokens "$WORK/cls.json" --quiet
  if python3 - "$OFFICIAL/imagenet/goldens.safetensors" "$WORK/cls.json" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
meta = json.loads(raw[8:8 + n])["sample.case0.grids"]
begin, end = meta["data_offsets"]
values = struct.unpack(f"<{(end - begin) // 4}i", raw[8 + n + begin:8 + n + end])
steps, images, tokens = meta["shape"]
last = values[(steps - 1) * images * tokens:]
golden = [list(last[i * tokens:(i + 1) * tokens]) for i in range(images)]
assert json.load(open(sys.argv[2]))["tokens"] == golden, "grids differ from the official run"
PY
  then echo "PASS: generate --class-label reproduces the official run's grids"; else echo "FAIL: class grids"; FAILED=1; fi
  check "generate: a class model refuses a prompt" 1 "$VQD" generate --model "$WORK/imagenet" --prompt "a fish" \
    --out "$WORK/x" --quiet
  expect_in "prompt refusal names the field" "$WORK/err" "prompt: model imagenet is class-conditional"
  check "generate: both --prompt and --class-label" 2 "$VQD" generate --model "$WORK/text" --prompt x --class-label 1 \
    --out "$WORK/x"
else
  echo "SKIPPED: convert-official (no ../shared/parity/official)"
fi

# Wrong arguments: a usage message and exit code 2; failures of the command: exit code 1.
check "no command" 2 "$VQD"
expect_in "usage shown" "$WORK/err" "usage: vqd <command>"
check "unknown command" 2 "$VQD" frobnicate
check "unknown option" 2 "$VQD" generate --model "$WORK/model" --prompt x --out "$WORK/x" --stepz 3
expect_in "unknown option named" "$WORK/err" "unknown option --stepz"
check "missing --prompt" 2 "$VQD" generate --model "$WORK/model" --out "$WORK/x"
check "non-numeric --steps" 2 "$VQD" generate --model "$WORK/model" --prompt x --out "$WORK/x" --steps abc
check "more steps than the schedule" 1 "$VQD" generate --model "$WORK/model" --prompt x --out "$WORK/x" --steps 101 --quiet
expect_in "steps range named" "$WORK/err" "steps must be in [1, 100]"
check "bad dtype" 1 "$VQD" generate --model "$WORK/model" --prompt x --out "$WORK/x" --dtype fp8
check "missing model" 1 "$VQD" generate --model "$WORK/nope" --prompt x --out "$WORK/x"
expect_in "missing model named" "$WORK/err" "does not exist"
check "bad preset" 1 "$VQD" make-model --preset huge --out "$WORK/m2"
check "help" 0 "$VQD" --help
exit $FAILED
