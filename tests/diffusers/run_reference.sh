#!/usr/bin/env bash
# Runs one live-reference script in the Python that has diffusers and transformers, in a scratch
# folder it removes afterwards. Skips loudly (77) without that Python or without the parity data.
#   run_reference.sh PYTHON PARITY_DIR SCRIPT VQD [ARGS...]   (SCRIPT gets VQD WORK_DIR ARGS...)
set -euo pipefail
PYTHON=$1 PARITY=$2 SCRIPT=$3 VQD=$4
shift 4
if [[ ! -f $PARITY/tiny/model/tokenizer/merges.txt ]]; then
  echo "*** PARITY DATA MISSING ($PARITY): this test is SKIPPED, not passed ***"
  exit 77
fi
if [[ ! -x $PYTHON ]]; then
  echo "*** NO PYTHON WITH DIFFUSERS at $PYTHON (scripts/install-torch.sh scripts/python/requirements-diffusers.txt" \
       "makes one; VQD_REFERENCE_PYTHON points elsewhere): this test is SKIPPED, not passed ***"
  exit 77
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-reference.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$(dirname "$0")"
"$PYTHON" "$(basename "$SCRIPT")" "$VQD" "$WORK" "$@"
