#!/usr/bin/env bash
# Trains the demo model from nothing, as the repository's assets/demo-model was made: installs
# the project's pinned Python environment (PyTorch, diffusers, transformers, in .cache/torch-venv)
# and runs train.py on 2 threads. Deterministic for a given seed and thread count.
#   tools/demo_model/train.sh [--out DIR] [train.py flags: --seed, --steps, --quick, ...]
# --out defaults to assets/demo-model.new: compare it (evaluate.py), move it over
# assets/demo-model and rebuild to ship it. CLIP's tokenizer files come from the parity data
# ($VQD_PARITY_DIR, default ../shared/parity).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$repo/assets/demo-model.new
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
venv=$("$repo/scripts/install-torch.sh" "$repo/scripts/python/requirements-diffusers.txt" | tail -n 1)
parity=${VQD_PARITY_DIR:-$repo/../shared/parity}
exec "$venv/bin/python" "$repo/tools/demo_model/train.py" --out "$out" --threads 2 --parity-dir "$parity" "${args[@]}"
