#!/usr/bin/env bash
# Starts vqd-server on loopback with its built-in demo model on the CPU, waits until it serves
# (--ready_file; with the client also `vqd-client health` and a 2-step generation, so that
# every family has series), compares its /metrics with exported_metrics.txt
# (check_exported_metrics.py), then sends SIGTERM and requires a clean exit (status 0) within
# the grace period.
#   run_live_metrics.sh PATH/TO/vqd-server [PATH/TO/vqd-client]
# Prints SKIPPED and exits 77 when the server binary is not given or not built.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server=${1:-}
client=${2:-}
if [[ -z "$server" || ! -x "$server" ]]; then
  echo "SKIPPED: vqd-server binary not found (${server:-not given})"
  exit 77
fi
python=$(command -v python3)
work=$(mktemp -d)
log="$work/server.log"
ready_file="$work/ready.json"
grace=5

# Any free ports on loopback; the server writes the ones it got to --ready_file once serving.
VQD_CACHE_DIR="$work/cache" HOME="$work" TMPDIR="$work" "$server" --listen=127.0.0.1:0 --metrics_port=0 \
  --metrics_address=127.0.0.1 --ready_file="$ready_file" --devices=cpu --dtype=fp32 \
  --grace_period="$grace" >"$log" 2>&1 &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*"
  echo "---- server log (last 40 lines)"
  tail -n 40 "$log"
  exit 1
}

ready=0
for _ in $(seq 1 300); do
  kill -0 "$pid" 2>/dev/null || fail "vqd-server exited during startup"
  if [[ -s "$ready_file" ]]; then ready=1; break; fi
  sleep 0.5
done
[[ $ready -eq 1 ]] || fail "vqd-server wrote no --ready_file in 150 s"
port() { "$python" -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$ready_file" "$1"; }
grpc_port=$(port grpc_port) || fail "bad ready file: $(cat "$ready_file")"
metrics_port=$(port metrics_port) || fail "bad ready file: $(cat "$ready_file")"
url="http://127.0.0.1:$metrics_port/metrics"
# Families that only exist once work has run (labelled by device) are required too when a
# client can run a small generation first; GPU memory exists only on CUDA devices.
require=vqd_build_info,vqd_model_load_seconds,vqd_queue_depth,vqd_requests_total,vqd_images_generated_total
if [[ -n "$client" && -x "$client" ]]; then
  "$client" health --server "127.0.0.1:$grpc_port" || fail "vqd-client health: not SERVING after the ready file"
  "$client" generate --server "127.0.0.1:$grpc_port" --timeout 120 --prompt "a red cube" --steps 2 \
    --num-images 1 --out "$work/image" --quiet || fail "vqd-client generate failed"
  require=$(grep -v '^#' "$here/exported_metrics.txt" | awk 'NF {print $1}' | grep -v '^vqd_gpu_memory' | paste -sd, -)
fi

"$python" "$here/check_exported_metrics.py" --url "$url" --allow-absent --require "$require" \
  || fail "/metrics does not match exported_metrics.txt"

kill -TERM "$pid"
start=$(date +%s%N)
for _ in $(seq 1 $((grace * 10 + 100))); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then fail "vqd-server still running $((grace + 10)) s after SIGTERM"; fi
wait "$pid"
rc=$?
[[ $rc -eq 0 ]] || fail "vqd-server exited with status $rc after SIGTERM"
echo "vqd-server exported the listed metrics and exited 0 $(( ($(date +%s%N) - start) / 1000000 )) ms after SIGTERM"
echo "1 passed, 0 failed"
