#!/usr/bin/env bash
# Runs client/node/vqd_client.js against a live server: info --json, then a 2-image, 5-step
# generate whose PNG files must have ModelInfo's image size. Installs client/node's packages with
# `npm ci` when node_modules is missing.
#   run_node_client.sh SERVER_ADDR OUTDIR
# Exit 0: passed; 1: failed; 77: skipped (node or npm missing, or the packages cannot be installed).
set -euo pipefail
# $VQD_TEST_TOKEN, when set, is sent as the bearer token.
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: $0 SERVER_ADDR OUTDIR" >&2; exit 2; }
SERVER=$1
OUT=$2/node
NODE_DIR="$REPO_ROOT/client/node"
command -v node >/dev/null 2>&1 || skip "node is not installed"
if [ ! -d "$NODE_DIR/node_modules/@grpc/grpc-js" ] || [ ! -d "$NODE_DIR/node_modules/@grpc/proto-loader" ]; then
  command -v npm >/dev/null 2>&1 || skip "npm is not installed and $NODE_DIR/node_modules is missing"
  echo "installing the node client's packages (npm ci)"
  (npm ci --prefix "$NODE_DIR" --no-audit --no-fund || npm install --prefix "$NODE_DIR" --no-audit --no-fund) >&2 \
    || skip "cannot install @grpc/grpc-js and @grpc/proto-loader with npm"
fi
CLIENT=(node "$NODE_DIR/vqd_client.js" --server "$SERVER" ${VQD_TEST_TOKEN:+--token "$VQD_TEST_TOKEN"})
rm -rf "$OUT" && mkdir -p "$OUT"

"${CLIENT[@]}" info --json > "$OUT/info.json" || fail "info --json exited $?"
read -r WIDTH HEIGHT < <(node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1])); console.log(d.image_width, d.image_height)' "$OUT/info.json") \
  || fail "info --json printed no image_width/image_height: $(cat "$OUT/info.json")"

exercise_client node "$OUT" "$WIDTH" "$HEIGHT" "${CLIENT[@]}"
