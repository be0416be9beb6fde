#!/usr/bin/env bash
# End-to-end tests of the clients against tests/clients/fake_server.py (no model needed): the
# run_*.sh scripts, then each client's exit codes for unreachable, busy, draining, unauthorized,
# invalid, failing, interrupted and badly written calls.
#   test_with_fake_server.sh [VQD_CLIENT]     (the C++ client is tested when its path is given)
# Ends with "N passed, N failed"; exit 0 when nothing failed, 77 when Python's grpcio is missing.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
CPP_CLIENT=${1:-}
PY=$(find_python_grpc) || skip "no python3 with grpcio, protobuf and grpc_tools or protoc (apt-get install python3-grpcio python3-grpc-tools protobuf-compiler)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-client-tests.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server NAME ARGS...: starts a fake server; sets ADDR_<NAME>.
start_server() {
  local name=$1
  shift
  "$PY" "$REPO_ROOT/tests/clients/fake_server.py" --port-file "$WORK/$name.port" "$@" \
    > "$WORK/$name.out" 2> "$WORK/$name.log" &
  PIDS+=($!)
  local i
  for i in $(seq 100); do
    [ -s "$WORK/$name.port" ] && break
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$WORK/$name.log"; fail "fake server $name did not start"; }
    sleep 0.1
  done
  [ -s "$WORK/$name.port" ] || fail "fake server $name did not start in 10 s"
  printf -v "ADDR_$name" '127.0.0.1:%s' "$(cat "$WORK/$name.port")"
}
start_server main --step-delay 0.005
start_server token --token s3cret
start_server busy --busy
start_server draining --draining
start_server slow --step-delay 0.2
CLOSED_ADDR=127.0.0.1:$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

PASSED=0
FAILED=0
SKIPPED=0
FAILURES=()
pass() { PASSED=$((PASSED + 1)); echo "PASS: $1"; }
failed() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "FAIL: $1"; }

# script NAME CMD...: a run_*.sh script; 77 counts as skipped.
script() {
  local name=$1
  shift
  echo "=== $name"
  "$@" > "$WORK/$name.script.log" 2>&1
  local rc=$?
  sed 's/^/    /' "$WORK/$name.script.log"
  case $rc in
    0) pass "$name" ;;
    77) SKIPPED=$((SKIPPED + 1)); echo "SKIP: $name" ;;
    *) failed "$name (exit $rc)" ;;
  esac
}

# expect NAME CODE PATTERN CMD...: CMD must exit with CODE and print PATTERN (grep -E) on stdout
# or stderr; PATTERN "-" means that it must print nothing at all.
expect() {
  local name=$1 code=$2 pattern=$3
  shift 3
  "$@" > "$WORK/out" 2> "$WORK/err"
  local rc=$?
  local printed=yes
  if [ "$pattern" = - ]; then
    [ ! -s "$WORK/out" ] && [ ! -s "$WORK/err" ] || printed=no
  else
    cat "$WORK/out" "$WORK/err" | grep -Eq -- "$pattern" || printed=no
  fi
  if [ "$rc" -eq "$code" ] && [ "$printed" = yes ]; then
    pass "$name"
  else
    failed "$name: exit $rc (expected $code), output: $(cat "$WORK/out" "$WORK/err" | tr '\n' ' ' | cut -c1-300)"
  fi
}

# interrupt NAME CMD...: SIGINT during a slow generate: exit 130, and the server saw the cancel.
interrupt() {
  local name=$1
  shift
  local before
  before=$(grep -c "cancelled by the client" "$WORK/slow.log")
  "$@" > "$WORK/out" 2> "$WORK/err" &
  local pid=$!
  local i
  for i in $(seq 100); do grep -q "^started:" "$WORK/err" && break; sleep 0.1; done
  sleep 0.5
  kill -INT "$pid"
  wait "$pid"
  local rc=$?
  sleep 0.5
  local after
  after=$(grep -c "cancelled by the client" "$WORK/slow.log")
  if [ "$rc" -eq 130 ] && [ "$after" -gt "$before" ] && grep -q "interrupted" "$WORK/err"; then
    pass "$name"
  else
    failed "$name: exit $rc (expected 130), server cancels $before -> $after, stderr: $(tr '\n' ' ' < "$WORK/err")"
  fi
}

# The error cases of one client; $1 names it, the rest is its command line without --server.
error_cases() {
  local c=$1
  shift
  local cl=("$@")
  expect "$c unreachable" 3 "cannot reach server at $CLOSED_ADDR" "${cl[@]}" --server "$CLOSED_ADDR" --timeout 2 info
  expect "$c busy" 4 "server busy: queue is full" "${cl[@]}" --server "$ADDR_busy" generate --prompt x --out "$WORK/$c-x"
  expect "$c draining" 4 "draining" "${cl[@]}" --server "$ADDR_draining" generate --prompt x --out "$WORK/$c-x"
  expect "$c no token" 6 "UNAUTHENTICATED" "${cl[@]}" --server "$ADDR_token" info
  expect "$c token" 0 "^model: +fake-vq-diffusion" "${cl[@]}" --server "$ADDR_token" --token s3cret info
  expect "$c invalid" 5 "invalid request: num_images must be in \[1, 4\], got 9" \
    "${cl[@]}" --server "$ADDR_main" generate --prompt x --num-images 9 --out "$WORK/$c-x"
  expect "$c internal" 1 "INTERNAL.*injected failure" \
    "${cl[@]}" --server "$ADDR_main" generate --prompt '!internal' --out "$WORK/$c-x"
  expect "$c deadline" 1 "deadline exceeded" \
    "${cl[@]}" --server "$ADDR_slow" --timeout 1 generate --prompt x --out "$WORK/$c-x"
  expect "$c usage" 2 "no-such-option" "${cl[@]}" --server "$ADDR_main" generate --prompt x --no-such-option 1 --out "$WORK/$c-x"
  expect "$c usage (missing --out)" 2 "out" "${cl[@]}" --server "$ADDR_main" generate --prompt x
  expect "$c class label sent" 5 "class_label: the fake model is conditioned on text, got 7" \
    "${cl[@]}" --server "$ADDR_main" generate --class-label 7 --out "$WORK/$c-x"
  expect "$c prompt or class label" 2 "class" "${cl[@]}" --server "$ADDR_main" generate --prompt x --class-label 7 \
    --out "$WORK/$c-x"
  expect "$c health" 0 "^SERVING$" "${cl[@]}" --server "$ADDR_main" health
  expect "$c health draining" 1 "^NOT_SERVING$" "${cl[@]}" --server "$ADDR_draining" health
  expect "$c quiet" 0 - "${cl[@]}" --server "$ADDR_main" generate --prompt x --steps 3 --quiet --out "$WORK/$c-q"
  interrupt "$c ctrl-c" "${cl[@]}" --server "$ADDR_slow" generate --prompt x --steps 50 --out "$WORK/$c-slow"
}

OUT="$WORK/out-files"
script python "$REPO_ROOT/tests/clients/run_python_client.sh" "$ADDR_main" "$OUT"
script node "$REPO_ROOT/tests/clients/run_node_client.sh" "$ADDR_main" "$OUT"
script reflection "$REPO_ROOT/tests/clients/run_reflection_call.sh" "$ADDR_main"
if [ -n "$CPP_CLIENT" ]; then
  script cpp "$REPO_ROOT/tests/clients/run_cpp_client.sh" "$CPP_CLIENT" "$ADDR_main" "$OUT"
fi

echo "=== exit codes"
error_cases python "$PY" "$REPO_ROOT/client/python/vqd_client.py"
ensure_node_modules
error_cases node node "$REPO_ROOT/client/node/vqd_client.js"
if [ -n "$CPP_CLIENT" ]; then
  error_cases cpp "$CPP_CLIENT"
  # Same seed, same images: the fake server draws them from the seed, and the client must pass it.
  "$CPP_CLIENT" --server "$ADDR_main" generate --prompt s --seed 77 --steps 2 --quiet --out "$WORK/seed-a" &&
    "$PY" "$REPO_ROOT/client/python/vqd_client.py" --server "$ADDR_main" generate --prompt s --seed 77 --steps 2 \
      --quiet --out "$WORK/seed-b" && cmp -s "$WORK/seed-a-0.png" "$WORK/seed-b-0.png" &&
    pass "cpp and python send the seed" || failed "cpp and python send the seed"
fi

echo
for f in "${FAILURES[@]}"; do echo "failed: $f"; done
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ "$FAILED" -eq 0 ]
