#!/usr/bin/env bash
# Runs client/node/vqd_client.js against a live server: info --json, then a 2-image, 5-step
# generate whose PNG files must have ModelInfo's image size. Installs client/node's packages when
# node_modules is missing (ensure_node_modules in lib.sh).
#   run_node_client.sh SERVER_ADDR OUTDIR
# Exit 0: passed; 1: failed (node missing or its packages not installable included).
set -euo pipefail
# $VQD_TEST_TOKEN, when set, is sent as the bearer token.
source "$(dirname "$0")/lib.sh"
[ $# -eq 2 ] || { echo "usage: $0 SERVER_ADDR OUTDIR" >&2; exit 2; }
SERVER=$1
OUT=$2/node
NODE_DIR="$REPO_ROOT/client/node"
ensure_node_modules
CLIENT=(node "$NODE_DIR/vqd_client.js" --server "$SERVER" ${VQD_TEST_TOKEN:+--token "$VQD_TEST_TOKEN"})
rm -rf "$OUT" && mkdir -p "$OUT"

"${CLIENT[@]}" info --json > "$OUT/info.json" || fail "info --json exited $?"
read -r WIDTH HEIGHT < <(node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1])); console.log(d.image_width, d.image_height)' "$OUT/info.json") \
  || fail "info --json printed no image_width/image_height: $(cat "$OUT/info.json")"

exercise_client node "$OUT" "$WIDTH" "$HEIGHT" "${CLIENT[@]}"
