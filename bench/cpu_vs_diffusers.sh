#!/usr/bin/env bash
# diffusers and vqd side by side on this machine's CPU, with the same PyTorch (vqd built against the
# libtorch of the project's torch environment, diffusers running on its Python), on the same
# random `small` model, float32, in one run:
#   one image per call; 8 images per call; 8 concurrent streaming clients through the server (one
#   image each) against 8 one-image diffusers calls in a row.
# Prints a markdown table (images/s, seconds per image, vqd over diffusers) for bench/RESULTS.md.
#   bench/cpu_vs_diffusers.sh [--steps N] [--guidance G]
# Environment: BUILD_DIR (default build-cuda: PyTorch's libtorch), TORCH_VENV (default
# .cache/torch-venv; scripts/install-torch.sh scripts/python/requirements-diffusers.txt makes it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$repo/build-cuda}
venv=${TORCH_VENV:-$repo/.cache/torch-venv}
steps=100 guidance=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --guidance) guidance=$2; shift 2 ;;
    *) echo "usage: $0 [--steps N] [--guidance G]" >&2; exit 2 ;;
  esac
done
for bin in "$build/tools/vqd" "$build/bench/vqd-bench" "$venv/bin/python"; do
  [[ -x $bin ]] || { echo "cpu_vs_diffusers: $bin is missing (scripts/dev.sh build-cuda builds vqd against the environment's torch)" >&2; exit 1; }
done
# diffusers' and transformers' deprecation notices and load messages would bury the tables.
export TRANSFORMERS_VERBOSITY=error DIFFUSERS_VERBOSITY=error PYTHONWARNINGS=ignore
work=$(mktemp -d "${TMPDIR:-/tmp}/vqd-cpu-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$build/tools/vqd" make-model --preset small --out "$work/small"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "command: bench/cpu_vs_diffusers.sh --steps $steps --guidance $guidance"
echo
"$venv/bin/python" "$repo/bench/diffusers_baseline.py" --model "$work/small" --device cpu --images 1,8 \
  --compile-images "" --sequential 8 --steps "$steps" --guidance "$guidance" --json "$work/diffusers.json"
"$build/bench/vqd-bench" pipeline --model "$work/small" --images 1,8 --steps "$steps" --guidance "$guidance" \
  --json "$work/pipeline.json"
"$build/bench/vqd-bench" server --model "$work/small" --clients 8 --requests-per-client 1 --images 1 \
  --steps "$steps" --guidance "$guidance" --json "$work/server.json"
"$venv/bin/python" - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
d = {(r["setup"], r["images"]): r for r in json.load(open(f"{work}/diffusers.json"))["runs"]}
p = {r["images"]: r for r in json.load(open(f"{work}/pipeline.json"))["runs"]}
s = [r for r in json.load(open(f"{work}/server.json"))["runs"] if r["batched"]][0]
rows = [("1 image per call", d[("plain", 1)]["images_per_s"], p[1]["images_per_s"]),
        ("8 images per call", d[("plain", 8)]["images_per_s"], p[8]["images_per_s"]),
        ("8 clients (vqd server, streaming) vs 8 calls in a row", d[("sequential", 8)]["images_per_s"], s["images_per_s"])]
print("\n| workload | diffusers images/s | diffusers s/image | vqd images/s | vqd s/image | vqd / diffusers |")
print("|---|---|---|---|---|---|")
slower = []
for label, ref, ours in rows:
    print(f"| {label} | {ref:.3f} | {1 / ref:.2f} | {ours:.3f} | {1 / ours:.2f} | {ours / ref:.2f}x |")
    if ours <= ref:
        slower.append(label)
print()
print("goal (vqd faster in every row):", "met" if not slower else "NOT met: " + "; ".join(slower))
EOF
