#!/usr/bin/env bash
# One entry point for a fresh Debian 12 / Ubuntu 24.04 machine: installs what is missing, builds,
# then serves or tests. Run from anywhere inside the repository.
#   scripts/dev.sh serve [vqd-server flags...]   build and run the service (built-in tiny model
#                                                unless --model DIR is given)
#   scripts/dev.sh test  [ctest args...]         build and run every test (what CI runs)
#   scripts/dev.sh build                         just build
# BUILD_DIR (default build) and JOBS (default: all cores) change the build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$repo/build}
jobs=${JOBS:-$(nproc)}
command=${1:-}
[[ $# -gt 0 ]] && shift

deps() { "$repo/scripts/install-deps.sh" "$@"; }
configure_and_build() {
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
  cmake --build "$build" -j "$jobs"
}

case "$command" in
  serve)
    deps
    configure_and_build
    exec "$build/server/vqd-server" "$@"
    ;;
  test)
    deps --extras
    configure_and_build
    cd "$build"
    exec ctest --output-on-failure -j "$jobs" --timeout 900 "$@"
    ;;
  build)
    deps
    configure_and_build
    ;;
  *)
    echo "usage: scripts/dev.sh serve|test|build [args...]" >&2
    exit 2
    ;;
esac
