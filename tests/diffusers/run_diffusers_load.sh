#!/usr/bin/env bash
# Converts the official-layout small text model (learned null, and zero-shot as the *_pretrained
# checkpoints are) and loads both in diffusers.
#   run_diffusers_load.sh VQD PYTHON PARITY_DIR
set -euo pipefail
VQD=$1 PYTHON=$2 PARITY=$3
OFFICIAL=$PARITY/official/text
if [[ ! -d $OFFICIAL || ! -f $PARITY/tiny/model/tokenizer/merges.txt ]]; then
  echo "*** OFFICIAL PARITY DATA MISSING ($OFFICIAL): this test is SKIPPED, not passed ***"
  exit 77
fi
if [[ ! -x $PYTHON ]]; then
  echo "*** NO PYTHON WITH DIFFUSERS at $PYTHON (scripts/install-torch.sh scripts/python/requirements-diffusers.txt" \
       "makes one; VQD_REFERENCE_PYTHON points elsewhere): this test is SKIPPED, not passed ***"
  exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-diffusers.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
for variant in learned zero-shot; do
  flags=()
  [[ $variant == zero-shot ]] && flags=(--zero-shot-null)
  "$VQD" convert-official --checkpoint "$OFFICIAL/text_small_learnable.pth" --config "$OFFICIAL/config.yaml" \
    --bpe "$PARITY/tiny/model/tokenizer/merges.txt" --out "$WORK/$variant" "${flags[@]}"
done
exec "$PYTHON" "$(dirname "$0")/check_diffusers_load.py" "$OFFICIAL/goldens.safetensors" "$WORK/learned" "$WORK/zero-shot"
