#!/usr/bin/env bash
# Soak test: the real vqd-server (tiny random model, CPU, loopback) under vqd-loadgen for up to
# SOAK_TIME_LIMIT seconds, then SIGTERM.
#   soak_test.sh VQD_SERVER VQD VQD_LOADGEN
#
# The server runs with --max-batch 16 --max-queue 32, so that 48 concurrent clients overflow the
# queue and some requests get RESOURCE_EXHAUSTED, and --grace-period 5. vqd-loadgen sends 2000
# requests (10% invalid, 10% cancelled by the client, 10% with short deadlines) and checks every
# answer, that the server goes idle afterwards (vqd_queue_depth and vqd_active_requests back to 0),
# that vqd_requests_total and vqd_images_generated_total moved by exactly what it sent (see the
# rule at the top of tools/loadgen/loadgen_main.cc), and the server's RSS:
#   - bound: 1.5 x the normal peak. The normal peak, measured on the tiny model on CPU with
#     Debian's libtorch 1.13, is the idle RSS after start (about 171 MiB) plus 40 MiB of warm-up
#     growth (about 205-210 MiB in all), so the bound is 1.5 x (idle + 40 MiB): 316 MiB there. It
#     is computed from the idle RSS so that a libtorch that maps more at start (CUDA builds) gets
#     the same headroom. SOAK_RSS_LIMIT_MB overrides it.
#   - growth: from the RSS once warmed up (a quarter of the way through) to the RSS at the end
#     (server idle again) at most SOAK_RSS_GROWTH_MB (default 16 MiB; measured without a leak:
#     -0.5 to 7 MiB over 10 runs, idle or under load; with the leak of one torch::Generator
#     (about 2.6 KiB) per request and step that libtorch 1.13's Generator::clone() causes:
#     33-40 MiB).
# Finally the idle server must stop on SIGTERM with exit code 0 and without waiting out its grace
# period (it has nothing left to drain).
#
# Environment: SOAK_REQUESTS (2000), SOAK_CONCURRENCY (48), SOAK_TIME_LIMIT (150 s), SOAK_SEED (1),
# SOAK_RSS_LIMIT_MB, SOAK_RSS_GROWTH_MB (16), SOAK_REPORT (soak-report.json in the working
# directory), SOAK_KEEP=1 keeps the work directory (model, logs), SOAK_SERVER_ARGS (more vqd-server
# flags, e.g. --priority-aging=1).
set -uo pipefail
SERVER=$1 VQD=$2 LOADGEN=$3
REQUESTS=${SOAK_REQUESTS:-2000}
CONCURRENCY=${SOAK_CONCURRENCY:-48}
TIME_LIMIT=${SOAK_TIME_LIMIT:-150}
SEED=${SOAK_SEED:-1}
GROWTH_MB=${SOAK_RSS_GROWTH_MB:-16}
REPORT=${SOAK_REPORT:-$PWD/soak-report.json}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-soak.XXXXXX")
SERVER_PID=
START=$(date +%s)

fail() {
  echo "FAIL: $*"
  if [ -f "$WORK/server.log" ]; then
    echo "--- last lines of the server log:"
    tail -40 "$WORK/server.log"
  fi
  exit 1
}
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  if [ "${SOAK_KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

for f in "$SERVER" "$VQD" "$LOADGEN"; do [ -x "$f" ] || fail "not an executable: $f"; done

"$VQD" make-model --preset tiny --out "$WORK/model" --seed 3 > "$WORK/make-model.log" 2>&1 ||
  { cat "$WORK/make-model.log"; fail "vqd make-model"; }

GRACE=5
"$SERVER" --model "$WORK/model" --devices cpu --listen 127.0.0.1:0 --metrics-port 0 --metrics-address 127.0.0.1 \
  --max-batch 16 --max-queue 32 --grace-period $GRACE --ready-file "$WORK/ready.json" ${SOAK_SERVER_ARGS:-} \
  > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
  [ -s "$WORK/ready.json" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "vqd-server exited during start-up"
  sleep 0.1
done
[ -s "$WORK/ready.json" ] || fail "vqd-server did not become ready in 60 s"
PORT=$(sed -E 's/.*"grpc_port": ([0-9]+).*/\1/' "$WORK/ready.json")
METRICS_PORT=$(sed -E 's/.*"metrics_port": ([0-9]+).*/\1/' "$WORK/ready.json")
IDLE_RSS_MB=$(awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$SERVER_PID/status")
[ -n "$IDLE_RSS_MB" ] || fail "cannot read the server's RSS from /proc/$SERVER_PID/status"
RSS_LIMIT_MB=${SOAK_RSS_LIMIT_MB:-$(( (IDLE_RSS_MB + 40) * 3 / 2 ))}
echo "vqd-server ready at 127.0.0.1:$PORT (metrics on $METRICS_PORT), pid $SERVER_PID, idle RSS $IDLE_RSS_MB MiB;" \
  "RSS bound $RSS_LIMIT_MB MiB, growth bound $GROWTH_MB MiB"

"$LOADGEN" --server "127.0.0.1:$PORT" --metrics "127.0.0.1:$METRICS_PORT" \
  --requests "$REQUESTS" --concurrency "$CONCURRENCY" --time-limit "$TIME_LIMIT" --seed "$SEED" \
  --invalid-fraction 0.1 --cancel-fraction 0.1 --deadline-fraction 0.1 --max-steps 20 --max-images 4 \
  --reject-backoff-ms 1500 --settle-timeout 30 \
  --rss-pid "$SERVER_PID" --rss-limit-mb "$RSS_LIMIT_MB" --rss-growth-limit-mb "$GROWTH_MB" \
  --report "$REPORT" 2>&1
LOADGEN_RC=$?
echo "vqd-loadgen exit code $LOADGEN_RC; report: $REPORT"

# SIGTERM: the server is idle, so it must drain at once and exit 0.
kill -0 "$SERVER_PID" 2>/dev/null || fail "vqd-server died during the soak"
TERM_AT=$(date +%s.%N)
kill -TERM "$SERVER_PID"
for _ in $(seq 300); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$SERVER_PID" 2>/dev/null; then fail "vqd-server still running 30 s after SIGTERM"; fi
wait "$SERVER_PID"
SERVER_RC=$?
SERVER_PID=
STOP_S=$(awk -v a="$TERM_AT" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "vqd-server exited with code $SERVER_RC ${STOP_S}s after SIGTERM; soak took $(( $(date +%s) - START ))s in all"

status=0
if [ "$LOADGEN_RC" -ne 0 ]; then echo "FAIL: vqd-loadgen found failures (exit $LOADGEN_RC)"; status=1; fi
if [ "$SERVER_RC" -ne 0 ]; then echo "FAIL: vqd-server exited with $SERVER_RC after SIGTERM"; status=1; fi
if grep -q "grace period over" "$WORK/server.log"; then
  echo "FAIL: the idle server waited out its grace period on SIGTERM:"
  grep -E "draining|grace period over|drained" "$WORK/server.log"
  status=1
fi
if grep -qiE "\[(critical|error)\]" "$WORK/server.log"; then
  echo "FAIL: the server logged errors:"
  grep -iE "\[(critical|error)\]" "$WORK/server.log" | head -20
  status=1
fi
if [ $status -ne 0 ]; then
  echo "--- last lines of the server log:"
  tail -40 "$WORK/server.log"
  exit 1
fi
echo "PASS"
