#!/usr/bin/env bash
# Runs client/python/vqd_client.py against a live server: info --json, then a 2-image, 5-step
# generate whose PNG files must have ModelInfo's image size.
#   run_python_client.sh SERVER_ADDR OUTDIR
# Exit 0: passed; 1: failed; 77: skipped (python3-grpcio or a proto compiler missing).
set -euo pipefail
# $VQD_TEST_TOKEN, when set, is sent as the bearer token.
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: $0 SERVER_ADDR OUTDIR" >&2; exit 2; }
SERVER=$1
OUT=$2/python
PY=$(find_python_grpc) || skip "no python3 with grpcio, protobuf and grpc_tools or protoc (apt-get install python3-grpcio python3-grpc-tools protobuf-compiler)"
CLIENT=("$PY" "$REPO_ROOT/client/python/vqd_client.py" --server "$SERVER" ${VQD_TEST_TOKEN:+--token "$VQD_TEST_TOKEN"})
rm -rf "$OUT" && mkdir -p "$OUT"

"${CLIENT[@]}" info --json > "$OUT/info.json" || fail "info --json exited $?"
read -r WIDTH HEIGHT < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["image_width"], d["image_height"])' "$OUT/info.json") \
  || fail "info --json printed no image_width/image_height: $(cat "$OUT/info.json")"

rc=0
"${CLIENT[@]}" generate --prompt "a small red boat on a lake" --num-images 2 --steps 5 --seed 1 --progress-every 1 \
  --request-id python-client-test --out "$OUT/img" > "$OUT/generate.out" 2> "$OUT/generate.err" || rc=$?
cat "$OUT/generate.err" "$OUT/generate.out"
[ "$rc" -eq 0 ] || fail "generate exited $rc"
grep -q "^done: " "$OUT/generate.out" || fail "generate printed no done: summary"
grep -q "^step 5/5 " "$OUT/generate.err" || fail "generate printed no progress for step 5/5"
check_png "$OUT/img-0.png" "$WIDTH" "$HEIGHT"
check_png "$OUT/img-1.png" "$WIDTH" "$HEIGHT"
[ ! -e "$OUT/img-2.png" ] || fail "a third image was written"

# An out-of-range field is INVALID_ARGUMENT: exit code 5.
rc=0
"${CLIENT[@]}" generate --prompt x --steps 0 --out "$OUT/bad" --quiet 2> "$OUT/invalid.err" || rc=$?
[ "$rc" -eq 5 ] || fail "generate --steps 0 exited $rc, expected 5: $(cat "$OUT/invalid.err")"
echo "PASS: python client"
