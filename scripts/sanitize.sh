#!/usr/bin/env bash
# Builds the unit and integration tests with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs them; CI runs it after the normal test suite. With clang the build also carries libFuzzer's
# coverage instrumentation, so scripts/run-fuzzers.sh can reuse it:
#   scripts/sanitize.sh && BUILD_DIR=build-sanitize scripts/run-fuzzers.sh 30
# Without clang it builds with gcc's sanitizers instead (and scripts/run-fuzzers.sh then fails: CI needs clang).
# libtorch, gRPC and the other Debian libraries are not instrumented; the project's code is.
# Environment: BUILD_DIR (default build-sanitize), JOBS (default: all cores), TEST_JOBS (test
# programs run at the same time; default 1).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$repo/build-sanitize}
jobs=${JOBS:-$(nproc)}
targets=(base_test io_test tokenizer_test scheduler_test component_parity_test official_parity_test pipeline_test engine_test
         request_validation_test server_integration_test server_hardening_test)
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [[ ! -f $build/CMakeCache.txt ]]; then
  if command -v clang++ > /dev/null; then
    CC=clang CXX=clang++ cmake -S "$repo" -B "$build" -G Ninja -DVQD_FUZZ=ON -DVQD_PCH=ON \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" \
      "-DCMAKE_CXX_FLAGS=${flags/-fsanitize=/-fsanitize=fuzzer-no-link,}"
  else
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS=$flags"
  fi
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

# Leaks in the libraries we do not build (process-lifetime singletons of libtorch and gRPC) are
# suppressed by library name in scripts/lsan.supp; a leak in our code still fails the run.
export ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1
export LSAN_OPTIONS=suppressions=$repo/scripts/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# The programs run TEST_JOBS at a time (default 1: the server tests time things), each into its own log, printed whole
# when it ends, so that the output stays readable.
test_jobs=${TEST_JOBS:-1}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
run_one() {
  local t=$1 binary start result=passed
  binary=$(find "$build/tests" -name "$t" -type f -perm -u+x | head -n 1)
  start=$(date +%s)
  (cd "$(dirname "$binary")" && "$binary" --gtest_brief=1) > "$logs/$t.log" 2>&1 || result=FAILED
  echo "$result" > "$logs/$t.status"
  echo "=== $t (ASan + UBSan): $result in $(( $(date +%s) - start )) s"
  cat "$logs/$t.log"
}
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [[ $running -ge $test_jobs ]]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
failed=()
for t in "${targets[@]}"; do
  grep -q '^passed' "$logs/$t.status" 2>/dev/null || failed+=("$t")
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "sanitize: FAILED: ${failed[*]}"
  exit 1
fi
echo "sanitize: all ${#targets[@]} test programs passed under ASan and UBSan"
