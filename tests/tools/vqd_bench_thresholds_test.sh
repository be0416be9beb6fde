#!/usr/bin/env bash
# vqd-bench's half-precision checks can fail: agreement and fidelity exit 3, naming the threshold
# and the measured value, when a flag's threshold is not met, and 0 when it is. bf16 on the CPU
# with the tiny random model (fp16 has no CPU kernels in every libtorch).
#   vqd_bench_thresholds_test.sh VQD VQD_BENCH
set -uo pipefail
VQD=$1 BENCH=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vqd-bench-thresholds.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
source "$(dirname "$0")/check_lib.sh"
expect_in() {  # expect_in NAME FILE TEXT
  if grep -qF -- "$3" "$2"; then echo "PASS: $1"; else echo "FAIL: $1: \"$3\" not in output"; sed 's/^/    /' "$2" | head -20; FAILED=1; fi
}
json_value() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

check "make-model tiny" 0 "$VQD" make-model --preset tiny --out "$WORK/model" --seed 2
AGREE=(agreement --model "$WORK/model" --device cpu --dtype bf16 --seeds 2 --steps 10)

check "agreement: loose threshold passes" 0 "$BENCH" "${AGREE[@]}" --min-agreement 0 --json "$WORK/agree.json"
expect_in "agreement: PASSED line" "$WORK/out" "PASSED:"
share=$(json_value "$WORK/agree.json" tokens_equal)
echo "measured agreement: $share"
# A threshold just above the measured share cannot be met (bf16 against fp32 on random weights
# always flips some tokens; a share of exactly 1 would leave nothing above it to test).
if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1 else 1)" "$share"; then
  check "agreement: threshold above the measured share fails" 3 "$BENCH" "${AGREE[@]}" --min-agreement 1 \
    --json "$WORK/agree-fail.json"
  expect_in "agreement: failure names the threshold" "$WORK/err" "below --min-agreement 1.0000"
  expect_in "agreement: failure gives the measured value" "$WORK/err" "$(printf '%.4f' "$share")"
  [[ $(json_value "$WORK/agree-fail.json" passed) == False ]] && echo "PASS: failed run's JSON says passed=false" ||
    { echo "FAIL: failed run's JSON"; FAILED=1; }
else
  echo "FAIL: bf16 agreed with fp32 on every token; the failing threshold cannot be tested"; FAILED=1
fi
check "agreement: default threshold 0.9 is in the usage" 2 "$BENCH" agreement --model "$WORK/model" --bogus 1
expect_in "agreement: usage documents --min-agreement" "$WORK/err" "--min-agreement F]   (default 0.9)"
check "agreement: out-of-range threshold is refused" 1 "$BENCH" "${AGREE[@]}" --min-agreement 1.5
expect_in "agreement: range named" "$WORK/err" "--min-agreement must be in [0, 1]"

FID=(fidelity --model "$WORK/model" --device cpu --dtypes bf16 --seeds 1 --steps 4 --every 2)
check "fidelity: loose thresholds pass" 0 "$BENCH" "${FID[@]}" --max-kl 100 --min-agreement 0 --max-ratio 0
check "fidelity: --max-kl 0 fails" 3 "$BENCH" "${FID[@]}" --max-kl 0 --max-ratio 0
expect_in "fidelity: KL failure names path and threshold" "$WORK/err" "bf16 plain mean KL"
expect_in "fidelity: KL failure names the flag" "$WORK/err" "above --max-kl 0"
exit $FAILED
