#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang in a build folder of their own and runs each
# for a bounded time on a fresh copy of its seed corpus. For CI:
#   scripts/run-fuzzers.sh [SECONDS_PER_TARGET]      (default 60)
# Environment:
#   BUILD_DIR   build folder (default: <repo>/build-fuzz; reused when it exists)
#   OUT_DIR     where corpora, logs and crash files go (default: $BUILD_DIR/fuzz-out; emptied first)
#   TARGETS     targets to run (default: all six, space-separated)
#   FUZZ_JOBS   targets run at the same time (default 1)
#   JOBS        build parallelism (default: all cores)
#   FUZZ_ARGS   extra libFuzzer flags for every target (e.g. "-use_value_profile=1")
#   VQD_ALLOW_FUZZ_SKIP=1   local development only: exit 77 (skip) instead of failing when clang or
#               its libFuzzer runtime is missing. CI never sets it: fuzzers that cannot run fail it.
# Exit status: 0 when every target ran clean; 1 when a target crashed, timed out, ran out of memory
# or did not start (the reproducer's path is printed); 2 for a build failure; 3 when clang or its
# libFuzzer runtime is missing (scripts/install-deps.sh --extras installs them); 77 instead of 3
# only with VQD_ALLOW_FUZZ_SKIP=1.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
build=${BUILD_DIR:-$repo/build-fuzz}
out=${OUT_DIR:-$build/fuzz-out}
jobs=${JOBS:-$(nproc)}
fuzz_jobs=${FUZZ_JOBS:-1}
all_targets="fuzz_safetensors fuzz_torch_bin fuzz_yaml_config fuzz_tokenizer fuzz_tokenizer_files fuzz_request_validation"
targets=${TARGETS:-$all_targets}

if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -lt 1 ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET]   (a positive integer; got '$seconds')" >&2
  exit 2
fi

# --- clang and libFuzzer -------------------------------------------------------------------------
# Fuzzers that cannot run are a failure, not a pass: a skip would let CI go green without fuzzing.
cannot_run() {
  if [[ ${VQD_ALLOW_FUZZ_SKIP:-0} == 1 ]]; then
    echo "SKIPPED (VQD_ALLOW_FUZZ_SKIP=1): $1"
    exit 77
  fi
  echo "FAILED: the fuzzers cannot run: $1" >&2
  echo "  install them with scripts/install-deps.sh --extras (clang, libclang-rt-dev, llvm);" >&2
  echo "  for local development only, VQD_ALLOW_FUZZ_SKIP=1 turns this into a skip (exit 77)" >&2
  exit 3
}
if ! command -v clang >/dev/null 2>&1 || ! command -v clang++ >/dev/null 2>&1; then
  cannot_run "clang/clang++ not found on PATH"
fi
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
  >"$probe_dir/probe.cc"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cc" -o "$probe_dir/probe" \
  >"$probe_dir/log" 2>&1; then
  cat "$probe_dir/log" >&2
  cannot_run "$(clang++ --version | head -1) cannot link -fsanitize=fuzzer,address,undefined (its libFuzzer/sanitizer runtimes, libclang-rt-dev, are missing)"
fi

# --- configure and build -------------------------------------------------------------------------
started=$(date +%s)
if [[ -f $build/CMakeCache.txt ]]; then
  if ! grep -q '^CMAKE_CXX_COMPILER_ID:INTERNAL=Clang' "$build/CMakeCache.txt" 2>/dev/null &&
    ! grep -Eq '^CMAKE_CXX_COMPILER:(FILEPATH|STRING)=.*clang' "$build/CMakeCache.txt"; then
    echo "error: $build was configured with another compiler; remove it or set BUILD_DIR" >&2
    exit 2
  fi
  echo "== reusing $build"
  cmake -S "$repo" -B "$build" -DVQD_FUZZ=ON >/dev/null || exit 2
else
  echo "== configuring $build"
  CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -G Ninja \
    -DVQD_FUZZ=ON -DVQD_BUILD_TESTS=OFF -DVQD_PCH=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" \
    "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" ||
    exit 2
fi
# shellcheck disable=SC2086
if ! cmake --build "$build" -j "$jobs" --target $targets; then
  echo "error: building the fuzz targets failed" >&2
  exit 2
fi
built=$(date +%s)
echo "== built in $((built - started)) s"

# --- run -----------------------------------------------------------------------------------------
rm -rf "$out"
mkdir -p "$out"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_target() {
  local t=$1 dir=$out/$1
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -r "$repo/tests/fuzz/corpus/$t/." "$dir/corpus/" 2>/dev/null
  local dict=()
  [[ -f $repo/tests/fuzz/dicts/$t.dict ]] && dict=("-dict=$repo/tests/fuzz/dicts/$t.dict")
  # The outer timeout only guards against a hang libFuzzer itself cannot stop (start-up included).
  # shellcheck disable=SC2086
  timeout --signal=KILL $((seconds + 300)) "$build/tests/fuzz/$t" "$dir/corpus" "${dict[@]}" \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$dir/artifacts/" ${FUZZ_ARGS:-} >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

summarize() {
  local t=$1 dir=$out/$1 rc log status artifact execs rate cov ft corp
  rc=$(cat "$dir/rc" 2>/dev/null || echo 255)
  log=$dir/log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -Eo 'ft: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -Eo 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [[ $rc == 0 ]]; then
    status=OK
  elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
    status="TIMEOUT"
  elif grep -q 'ERROR: libFuzzer: out-of-memory' "$log"; then
    status="OUT-OF-MEMORY"
  elif grep -q 'ERROR: LeakSanitizer' "$log"; then
    status="LEAK"
  elif [[ -n $artifact ]] || grep -q 'ERROR: \(AddressSanitizer\|libFuzzer\|UndefinedBehaviorSanitizer\)\|runtime error:' "$log"; then
    status="CRASH"
  else
    status="FAILED (exit $rc)"
  fi
  printf '%-24s %-14s execs=%-9s exec/s=%-6s cov=%-6s ft=%-6s corpus=%s\n' "$t" "$status" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if [[ $status != OK ]]; then
    echo "    log: $log"
    [[ -n $artifact ]] && echo "    reproducer: $artifact   (rerun: $build/tests/fuzz/$t $artifact)"
    grep -m1 -E 'ERROR: |runtime error:|invariant failed' "$log" | sed 's/^/    /'
    return 1
  fi
  return 0
}

echo "== fuzzing each target for $seconds s (logs and corpora in $out)"
running=0
for t in $targets; do
  if [[ ! -x $build/tests/fuzz/$t ]]; then
    echo "error: $build/tests/fuzz/$t was not built" >&2
    mkdir -p "$out/$t"
    : >"$out/$t/log"
    echo 127 >"$out/$t/rc"
    continue
  fi
  run_target "$t" &
  running=$((running + 1))
  if [[ $running -ge $fuzz_jobs ]]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
echo "== summary"
for t in $targets; do
  summarize "$t" || failed=1
done
finished=$(date +%s)
echo "== total $((finished - started)) s (build $((built - started)) s, fuzzing $((finished - built)) s)"
if [[ $failed != 0 ]]; then
  echo "FAILED: a fuzz target found a problem (see the reproducers above)"
  exit 1
fi
echo "PASSED: no crashes"
exit 0
