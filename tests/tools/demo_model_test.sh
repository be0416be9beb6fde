#!/usr/bin/env bash
# The trained demo model as users get it: `vqd make-model --preset demo` writes, byte for byte,
# the model directory the repository ships (assets/demo-model, built into the binaries), and that
# model draws what its prompts ask for in scenes (shape, colour, position, background, size)
# that training never showed: tools/demo_model/evaluate.py, a small version of the full
# evaluation, at the model's default guidance (1), requires the accuracies its image analysis
# measured on this model with a margin of two images in 27 (colour 92.6%, shape 59.3%, position
# 100% on 2026-12-02): at least 85% colour, 50% shape and 90% position. The issue's bar (90%
# colour and 80% shape at guidance 5) is not met: see README, "The demo model".
#   demo_model_test.sh REPO VQD
set -uo pipefail
REPO=$1 VQD=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
source "$(dirname "$0")/check_lib.sh"

check "make-model --preset demo" 0 "$VQD" make-model --preset demo --out "$WORK/model"
check "the written model is the shipped one, byte for byte" 0 diff -r "$REPO/assets/demo-model" "$WORK/model"
check "make-model --preset demo refuses to overwrite" 1 "$VQD" make-model --preset demo --out "$WORK/model"
check "--seed does not apply to the trained model" 2 "$VQD" make-model --preset demo --seed 3 --out "$WORK/other"
[[ -e $WORK/other ]] && { echo "FAIL: a refused make-model left $WORK/other behind"; FAILED=1; }
check "inspect" 0 "$VQD" inspect "$WORK/model"

# Half of the 54 held-out scenes, one seed each: 27 images.
# One thread per vqd: CTest runs other tests beside this one, and 27 processes that each spin
# up all cores crawl under that contention.
check "held-out prompts: colour >= 85%, shape >= 50%, position >= 90%" 0 env OMP_NUM_THREADS=1 \
  python3 "$REPO/tools/demo_model/evaluate.py" --vqd "$VQD" --model "$WORK/model" --out "$WORK/eval" \
  --scenes 27 --seeds 1 --min-colour 0.85 --min-shape 0.5 --min-position 0.9
cat "$WORK/out"
exit $FAILED
