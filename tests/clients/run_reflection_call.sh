#!/usr/bin/env bash
# Runs client/python/reflection_call.py against a live server: GetModelInfo through server
# reflection only; the JSON must have model_name and a positive codebook_size.
#   run_reflection_call.sh SERVER_ADDR
# Exit 0: passed; 1: failed; 77: skipped (python3-grpcio or a proto compiler missing).
set -euo pipefail
# $VQD_TEST_TOKEN, when set, is sent as the bearer token.
source "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 SERVER_ADDR" >&2; exit 2; }
PY=$(find_python_grpc) || skip "no python3 with grpcio, protobuf and grpc_tools or protoc (apt-get install python3-grpcio python3-grpc-tools protobuf-compiler)"
json=$("$PY" "$REPO_ROOT/client/python/reflection_call.py" --server "$1" ${VQD_TEST_TOKEN:+--token "$VQD_TEST_TOKEN"}) || fail "reflection_call.py exited $?"
echo "$json"
"$PY" - "$json" <<'PY' || fail "the JSON lacks model_name or codebook_size"
import json, sys
info = json.loads(sys.argv[1])
assert info.get("model_name"), "model_name"
assert int(info.get("codebook_size", 0)) > 0, "codebook_size"
PY
echo "PASS: reflection call"
