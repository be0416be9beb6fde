#!/usr/bin/env bash
# The GPU benchmark of bench/RESULTS.md, on the GPU host (../shared/gpu/README.md), from the
# project's root with .gpu/ present:
#   bash bench/run_gpu_bench.sh [OUT_DIR]
# Builds the project against the host's libtorch (CUDA), writes an ITHQ-shaped model with random
# weights, then prints, in one run on one GPU:
#   1. vqd-bench pipeline: 1, 8 and 32 images in one call (fp16, 100 steps, guidance 5)
#   2. vqd-bench server: 1 and 64 concurrent streaming clients, batched and with one request per step
#   3. vqd-bench agreement: fp16 and bf16 final grids against fp32 on the same seeds
#   4. diffusers' VQDiffusionPipeline on the same model and GPU, plain and with torch.compile,
#      when its source is in third_party_src/diffusers/src (fetched outside git, never committed)
# Results go to OUT_DIR (default $OUT or bench-out) as markdown.
set -euo pipefail
out=${1:-${OUT:-bench-out}}
mkdir -p "$out"
bash .gpu/device-build.sh > "$out/build.log" 2>&1 || { tail -50 "$out/build.log"; exit 1; }
source .gpu/env.sh
build=${BUILD_DIR:-build-gpu}
model=${MODEL:-/tmp/vqd-ithq-random}
if [[ ! -f $model/model_index.json ]]; then
  "$build/tools/vqd" make-model --preset ithq --dtype fp16 --out "$model"
fi
{
  echo "## $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  "$build/bench/vqd-bench" pipeline --model "$model" --device cuda:0 --dtype fp16 --images 1,8,32 --steps 100
  "$build/bench/vqd-bench" server --model "$model" --device cuda:0 --dtype fp16 --max-batch 128 --clients 1,64 \
      --requests-per-client 2 --steps 100 --unbatched-baseline
} | tee "$out/vqd.md"
"$build/bench/vqd-bench" agreement --model "$model" --device cuda:0 --dtype fp16 --seeds 4 | tee "$out/agreement-fp16.md"
"$build/bench/vqd-bench" agreement --model "$model" --device cuda:0 --dtype bf16 --seeds 4 | tee "$out/agreement-bf16.md"
if [[ -d third_party_src/diffusers/src ]]; then
  PYTHONPATH=third_party_src/diffusers/src${PYTHONPATH:+:$PYTHONPATH} python3 bench/diffusers_baseline.py \
      --model "$model" --images 1,8,32 --steps 100 | tee "$out/diffusers.md"
else
  echo "diffusers baseline skipped: put diffusers' src/ in third_party_src/diffusers/src" | tee "$out/diffusers.md"
fi
