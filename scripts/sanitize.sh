#!/usr/bin/env bash
# Builds the unit and integration tests with AddressSanitizer and UndefinedBehaviorSanitizer and
# runs them; CI runs it after the normal test suite. With clang the build also carries libFuzzer's
# coverage instrumentation, so scripts/run-fuzzers.sh can reuse it:
#   scripts/sanitize.sh && BUILD_DIR=build-sanitize scripts/run-fuzzers.sh 30
# Without clang it builds with gcc's sanitizers instead (and scripts/run-fuzzers.sh then fails: CI needs clang).
# libtorch, gRPC and the other Debian libraries are not instrumented; the project's code is.
# Environment: BUILD_DIR (default build-sanitize), JOBS (default: all cores).
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
failed=()
for t in "${targets[@]}"; do
  binary=$(find "$build/tests" -name "$t" -type f -perm -u+x | head -n 1)
  echo "=== $t (ASan + UBSan)"
  if ! (cd "$(dirname "$binary")" && "$binary" --gtest_brief=1); then failed+=("$t"); fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "sanitize: FAILED: ${failed[*]}"
  exit 1
fi
echo "sanitize: all ${#targets[@]} test programs passed under ASan and UBSan"
