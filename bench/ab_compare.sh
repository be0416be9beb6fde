#!/usr/bin/env bash
# A/B comparison of two builds of vqd-bench on the same machine, in one script: runs the same
# vqd-bench arguments with each binary, alternating A B A B ... ROUNDS times, so that drift of the
# machine (thermal, other load) hits both sides alike. Prints each run's table unchanged.
#   bench/ab_compare.sh BENCH_A BENCH_B ROUNDS -- VQD_BENCH_ARGS...
# Typical use: build the baseline commit in a worktree (git worktree add ../base <commit>;
# cmake -S ../base -B ../build-base -G Ninja -DCMAKE_BUILD_TYPE=Release; ninja -C ../build-base vqd-bench)
# and compare it with build/bench/vqd-bench.
set -euo pipefail
[ $# -ge 4 ] && [ "$4" = -- ] || { echo "usage: $0 BENCH_A BENCH_B ROUNDS -- VQD_BENCH_ARGS..." >&2; exit 2; }
A=$1 B=$2 ROUNDS=$3
shift 4
for bin in "$A" "$B"; do [ -x "$bin" ] || { echo "$bin is not an executable" >&2; exit 2; }; done
echo "A/B on $(hostname), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs: vqd-bench $*"
for round in $(seq "$ROUNDS"); do
  for side in A B; do
    bin=$A
    [ "$side" = B ] && bin=$B
    echo "--- round $round, $side ($bin)"
    "$bin" "$@"
  done
done
