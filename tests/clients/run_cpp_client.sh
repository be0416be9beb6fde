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
read -r WIDTH HEIGHT < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["image_width"], d["image_height"])' "$OUT/info.json") \
  || fail "info --json printed no image size: $(cat "$OUT/info.json")"

exercise_client cpp "$OUT" "$WIDTH" "$HEIGHT" "${CLIENT[@]}"
