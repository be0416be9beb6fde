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

exercise_client python "$OUT" "$WIDTH" "$HEIGHT" "${CLIENT[@]}"
