#!/usr/bin/env bash
# End to end on loopback: vqd-server (tiny model, CPU) scraped every second by a real Prometheus
# that loads deploy/prometheus's rule files; a few generations; then every dashboard panel query,
# recording rule and alert expression is run against that Prometheus (query_dashboard.py).
#   run_prometheus_e2e.sh PATH/TO/vqd-server PATH/TO/vqd-client
# Prints SKIPPED and exits 77 without the binaries or without prometheus (apt-get install
# prometheus).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rules_dir=$(cd "$here/../../deploy/prometheus" && pwd)
server=${1:-}
client=${2:-}
if [[ -z "$server" || ! -x "$server" || -z "$client" || ! -x "$client" ]]; then
  echo "SKIPPED: vqd-server and vqd-client binaries are needed (${server:-none}, ${client:-none})"
  exit 77
fi
if ! command -v prometheus >/dev/null 2>&1; then
  echo "SKIPPED: prometheus not found (apt-get install prometheus)"
  exit 77
fi
python=$(command -v python3)
work=$(mktemp -d)
server_pid=""
prom_pid=""
cleanup() {
  for p in $server_pid $prom_pid; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null; fi
  done
  for _ in $(seq 1 100); do
    alive=0
    for p in $server_pid $prom_pid; do
      if kill -0 "$p" 2>/dev/null; then alive=1; fi
    done
    [[ $alive -eq 0 ]] && break
    sleep 0.1
  done
  for p in $server_pid $prom_pid; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAILED: $*"
  for l in server prometheus; do
    echo "---- $l log (last 30 lines)"
    tail -n 30 "$work/$l.log" 2>/dev/null
  done
  exit 1
}
wait_for() {  # wait_for SECONDS COMMAND...
  local n=$(($1 * 2))
  shift
  for _ in $(seq 1 "$n"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

VQD_CACHE_DIR="$work/cache" HOME="$work" TMPDIR="$work" "$server" --listen=127.0.0.1:0 --metrics_port=0 \
  --metrics_address=127.0.0.1 --ready_file="$work/ready.json" --devices=cpu --dtype=fp32 \
  --grace_period=5 >"$work/server.log" 2>&1 &
server_pid=$!
wait_for 150 test -s "$work/ready.json" || fail "vqd-server wrote no --ready_file"
port() { "$python" -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$work/ready.json" "$1"; }
grpc_port=$(port grpc_port)
metrics_port=$(port metrics_port)
prom_port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cp "$rules_dir/alerts.yml" "$work/"
# Evaluate every group each second (a group's own interval, 30 s, could leave it unevaluated).
sed 's/^\( *\)interval: .*/\1interval: 1s/' "$rules_dir/recording_rules.yml" >"$work/recording_rules.yml"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml, recording_rules.yml]
scrape_configs:
  - job_name: vqd
    static_configs:
      - targets: ["127.0.0.1:$metrics_port"]
EOF
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
prom="http://127.0.0.1:$prom_port"
wait_for 60 "$python" -c "import urllib.request; urllib.request.urlopen('$prom/-/ready', timeout=2)" \
  || fail "Prometheus did not become ready"

# Traffic: a few small generations over about 20 seconds (bounded), so rates have two samples.
for i in 1 2 3 4 5 6; do
  "$client" generate --server "127.0.0.1:$grpc_port" --timeout 120 --prompt "test image $i" --steps 3 \
    --num-images 2 --out "$work/img$i" --quiet || fail "generation $i failed"
  sleep 3
done
sleep 3

"$python" "$here/query_dashboard.py" --prometheus "$prom" --rate-interval 30s || fail "dashboard queries failed"
echo "1 passed, 0 failed"
