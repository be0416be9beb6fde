#!/usr/bin/env bash
# The samplers side by side on one random model: diffusers' standard sampler (100 steps), the
# official strided sampler (S = 2, 4) and Improved VQ-Diffusion's fixed-count unmasking (uniform and
# purity positions, alone and strided). For each: steps, seconds per image (one image, guidance 5,
# prompt encoding and decoding included, model load excluded) and how the unmasking proceeds: the
# fraction of tokens still masked after a quarter, half and three quarters of the steps, and the
# fewest/most tokens a step with t > 0 revealed. Prints a markdown table for the README, then the
# cost of live previews: the standard sampler with a preview every 10 steps and every step, against
# none (previews are decoded and written by vqd generate, as the server decodes and streams them).
#   bench/samplers.sh [--preset tiny|small] [--images K] [--seeds N]
# BUILD_DIR (default build) holds the vqd tool.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
preset=small images=1 seeds=3
while [[ $# -gt 0 ]]; do
  case $1 in
    --preset) preset=$2; shift 2 ;;
    --images) images=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    *) echo "usage: $0 [--preset tiny|small] [--images K] [--seeds N]" >&2; exit 2 ;;
  esac
done
vqd=$build/tools/vqd
[[ -x $vqd ]] || { echo "samplers: $vqd is missing (scripts/dev.sh build)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vqd-samplers.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$vqd" make-model --preset "$preset" --out "$work/model" 2> /dev/null
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "command: bench/samplers.sh --preset $preset --images $images --seeds $seeds (random $preset model, CPU, float32)"
samplers=(
  "standard|--steps 100"
  "strided S=2|--time-stride 2"
  "strided S=4|--time-stride 4"
  "fixed count, uniform|--prior-rule uniform"
  "fixed count, purity r=1|--prior-rule purity --prior-weight 1"
  "strided S=4 + purity r=1|--time-stride 4 --prior-rule purity --prior-weight 1"
  "standard, a preview every 10 steps|--steps 100 --preview-every 10"
  "standard, a preview every step|--steps 100 --preview-every 1"
)
i=0
for entry in "${samplers[@]}"; do
  label=${entry%%|*} flags=${entry#*|}
  for seed in $(seq 1 "$seeds"); do
    # shellcheck disable=SC2086
    "$vqd" generate --model "$work/model" --prompt "a red car parked by the sea" --num-images "$images" \
      --seed "$seed" $flags --out "$work/img" --save-trace "$work/trace-$i-$seed.safetensors" 2> "$work/log-$i-$seed"
    grep -o 'generated [0-9]* images in [0-9.]* s' "$work/log-$i-$seed" | awk '{print $5}' > "$work/seconds-$i-$seed"
  done
  echo "$label" > "$work/label-$i"
  i=$((i + 1))
done
python3 - "$work" "$i" "$seeds" "$images" <<'EOF'
import array, json, struct, sys
work, count, seeds, images = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
model = json.load(open(f"{work}/model/transformer/config.json"))
mask = model["num_vector_embeds"] - 1

def grids(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    g = header["grids"]
    assert g["dtype"] == "I64"
    values = array.array("q")
    values.frombytes(data[g["data_offsets"][0]:g["data_offsets"][1]])
    steps, n_img, tokens = g["shape"]
    return [[values[(s * n_img + k) * tokens:(s * n_img + k + 1) * tokens] for k in range(n_img)] for s in range(steps)], tokens

print("\n| sampler | steps | s/image | masked after 1/4, 1/2, 3/4 of the steps | tokens revealed per step (t > 0): fewest..most |")
print("|---|---|---|---|---|")
per_image = {}
for i in range(count):
    label = open(f"{work}/label-{i}").read().strip()
    seconds, fractions, revealed = [], [], []
    for seed in range(1, seeds + 1):
        seconds.append(float(open(f"{work}/seconds-{i}-{seed}").read()) / images)
        g, tokens = grids(f"{work}/trace-{i}-{seed}.safetensors")
        masked = [[sum(1 for t in img if t == mask) for img in step] for step in g]
        steps = len(g)
        fractions.append([sum(masked[min(steps - 1, steps * q // 4 - 1)]) / (tokens * len(g[0])) for q in (1, 2, 3)])
        before = [tokens] * len(g[0])
        for s in range(steps - 1):  # the last step (t = 0) samples every position
            revealed += [b - m for b, m in zip(before, masked[s])]
            before = masked[s]
    mean = [sum(f[q] for f in fractions) / seeds for q in range(3)]
    per_image[label] = sum(seconds) / seeds
    if "preview" in label:
        continue
    print(f"| {label} | {steps} | {sum(seconds) / seeds:.3f} | {mean[0]:.2f}, {mean[1]:.2f}, {mean[2]:.2f} | "
          f"{min(revealed)}..{max(revealed)} |")
base = per_image["standard"]
print("\n| previews (standard sampler, 100 steps) | s/image | previews | extra s per preview | extra per step |")
print("|---|---|---|---|---|")
print(f"| none | {base:.3f} | 0 | | |")
for label, every in (("standard, a preview every 10 steps", 10), ("standard, a preview every step", 1)):
    count_previews = len([s for s in range(1, 100) if s % every == 0])
    extra = per_image[label] - base
    print(f"| every {every} step{'s' if every > 1 else ''} | {per_image[label]:.3f} | {count_previews} | "
          f"{extra / count_previews * 1000:.1f} ms | {extra / 100 * 1000:.1f} ms |")
EOF
