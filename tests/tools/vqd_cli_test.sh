#!/usr/bin/env bash
# The offline tool as a user runs it: make-model, generate (PNGs and --save-tokens), tokenize,
# inspect, and clear usage errors with a non-zero exit for wrong arguments.
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
if [[ -n $PARITY && -d $PARITY/tiny/model ]]; then
  check "tokenize" 0 "$VQD" tokenize --model "$PARITY/tiny/model" "teddy bear playing in the pool"
  expect_in "tokenize ids" "$WORK/out" "[49406,11798,4298,1629,530,518,2831,49407,49407"
else
  echo "SKIPPED: tokenize against the parity tokenizer (no ../shared/parity)"
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
