#!/usr/bin/env bash
# The real vqd-server (tiny random model, CPU, loopback) driven by every client: C++, Python,
# Node.js, and a call through server reflection without the .proto file.
#   test_with_live_server.sh VQD_SERVER VQD VQD_CLIENT
# Exit 0 when every client passed; a client whose runtime is missing is reported as skipped.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
SERVER=$1 VQD=$2 CLIENT=$3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-live-clients.XXXXXX")
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

"$VQD" make-model --preset tiny --out "$WORK/model" --seed 3 2> "$WORK/make-model.log" || { cat "$WORK/make-model.log"; fail "make-model"; }
"$SERVER" --model "$WORK/model" --listen 127.0.0.1:0 --metrics-port 0 --metrics-address 127.0.0.1 \
  --ready-file "$WORK/ready.json" --grace-period 20 > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
  [ -s "$WORK/ready.json" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; fail "vqd-server exited during start-up"; }
  sleep 0.1
done
[ -s "$WORK/ready.json" ] || { cat "$WORK/server.log"; fail "vqd-server did not become ready in 30 s"; }
PORT=$(sed -E 's/.*"grpc_port": ([0-9]+).*/\1/' "$WORK/ready.json")
ADDR=127.0.0.1:$PORT
echo "vqd-server ready at $ADDR"

PASSED=0 FAILED=0 SKIPPED=0
run() {
  local name=$1
  shift
  echo "=== $name"
  "$@" > "$WORK/$name.log" 2>&1
  local rc=$?
  sed 's/^/    /' "$WORK/$name.log"
  case $rc in
    0) PASSED=$((PASSED + 1)); echo "PASS: $name" ;;
    77) SKIPPED=$((SKIPPED + 1)); echo "SKIP: $name" ;;
    *) FAILED=$((FAILED + 1)); echo "FAIL: $name (exit $rc)" ;;
  esac
}
DIR=$(dirname "$0")
export VQD_TEST_SAMPLERS=1  # the real server serves the official samplers' fields and previews
run cpp "$DIR/run_cpp_client.sh" "$CLIENT" "$ADDR" "$WORK/cpp"
run python "$DIR/run_python_client.sh" "$ADDR" "$WORK/python"
run node "$DIR/run_node_client.sh" "$ADDR" "$WORK/node"
run reflection "$DIR/run_reflection_call.sh" "$ADDR"

# Every client sent the same request (prompt, seed 1): the grids must not depend on the client.
TOKENS=()
for name in cpp python node; do
  [ -s "$WORK/$name/$name/tokens.json" ] && TOKENS+=("$WORK/$name/$name/tokens.json")
done
if [ ${#TOKENS[@]} -ge 2 ]; then
  if python3 - "${TOKENS[@]}" <<'PY'
import json, sys
grids = [json.load(open(p))["tokens"] for p in sys.argv[1:]]
assert all(g == grids[0] for g in grids), "the clients' token grids differ"
PY
  then PASSED=$((PASSED + 1)); echo "PASS: the same grids through ${#TOKENS[@]} clients"
  else FAILED=$((FAILED + 1)); echo "FAIL: the clients' token grids differ"; fi
fi

# The official samplers' request (stride 10, purity): the same grid through every client, and the
# grid `vqd generate` computes with the same fields (a client that dropped a field would differ).
"$VQD" generate --model "$WORK/model" --prompt "a small red boat on a lake" --time-stride 10 --prior-rule purity \
  --prior-weight 1 --seed 2 --out "$WORK/offline" --save-tokens "$WORK/offline-tokens.json" --quiet \
  || fail "vqd generate with the samplers' fields"
SAMPLERS=("$WORK/offline-tokens.json")
for name in cpp python node; do
  [ -s "$WORK/$name/$name/sampler/tokens.json" ] && SAMPLERS+=("$WORK/$name/$name/sampler/tokens.json")
done
if python3 - "${SAMPLERS[@]}" <<'PY'
import json, sys
grids = [json.load(open(p))["tokens"] for p in sys.argv[1:]]
assert len(grids) >= 2 and all(g == grids[0] for g in grids), "the strided purity grids differ from vqd generate's"
PY
then PASSED=$((PASSED + 1)); echo "PASS: strided purity grids through $(( ${#SAMPLERS[@]} - 1 )) clients equal vqd generate's"
else FAILED=$((FAILED + 1)); echo "FAIL: strided purity grids differ"; fi

# The server stops cleanly on SIGTERM.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
SERVER_PID=
if [ $rc -eq 0 ]; then PASSED=$((PASSED + 1)); echo "PASS: SIGTERM exit 0"; else FAILED=$((FAILED + 1)); echo "FAIL: SIGTERM exit $rc"; tail -20 "$WORK/server.log"; fi
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ $FAILED -eq 0 ]
