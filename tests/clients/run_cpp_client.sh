#!/usr/bin/env bash
# Runs the C++ vqd-client against a live server: health, info --json, a 2-image, 5-step generate
# with --save-tokens (PNG sizes from ModelInfo, one token grid per image), and an invalid request.
#   run_cpp_client.sh VQD_CLIENT SERVER_ADDR OUTDIR
# Exit 0: passed; 1: failed; 77: skipped (no Python to read the JSON with).
set -euo pipefail
# $VQD_TEST_TOKEN, when set, is sent as the bearer token.
source "$(dirname "$0")/lib.sh"
[ $# -eq 3 ] || { echo "usage: $0 VQD_CLIENT SERVER_ADDR OUTDIR" >&2; exit 2; }
CLIENT=("$1" --server "$2" ${VQD_TEST_TOKEN:+--token "$VQD_TEST_TOKEN"})
OUT=$3/cpp
command -v python3 >/dev/null 2>&1 || skip "python3 is needed to read JSON"
rm -rf "$OUT" && mkdir -p "$OUT"

[ "$("${CLIENT[@]}" health)" = SERVING ] || fail "health is not SERVING"
"${CLIENT[@]}" info --json > "$OUT/info.json" || fail "info --json exited $?"
read -r WIDTH HEIGHT GRID < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["image_width"], d["image_height"], d["grid_height"] * d["grid_width"])' "$OUT/info.json") \
  || fail "info --json printed no image size: $(cat "$OUT/info.json")"

exercise_client cpp "$OUT" "$WIDTH" "$HEIGHT" "${CLIENT[@]}" -- --save-tokens "$OUT/tokens.json"
python3 - "$OUT/tokens.json" "$GRID" <<'PY' || fail "tokens.json is not 2 grids of $GRID tokens"
import json, sys
tokens = json.load(open(sys.argv[1]))["tokens"]
assert len(tokens) == 2 and all(len(t) == int(sys.argv[2]) for t in tokens), [len(t) for t in tokens]
PY
