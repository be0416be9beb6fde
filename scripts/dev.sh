#!/usr/bin/env bash
# One entry point for a fresh Debian 12 / Ubuntu 24.04 machine: installs what is missing, builds,
# then serves or tests. Run from anywhere inside the repository.
#   scripts/dev.sh serve [vqd-server flags...]   build and run the service (built-in demo model
#                                                unless --model DIR is given)
#   scripts/dev.sh test  [ctest args...]         build and run every test (what CI runs)
#   scripts/dev.sh build                         just build
#   scripts/dev.sh build-cuda                    build against PyTorch's own libtorch 2.11 with CUDA
#                                                (installed into .cache/torch-venv) in build-cuda/
#   scripts/dev.sh test-cuda [ctest args...]     that build's whole test suite (on the CPU without a GPU)
# BUILD_DIR (default build, or build-cuda) and JOBS (default: all cores) change the build.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-$(nproc)}
command=${1:-}
[[ $# -gt 0 ]] && shift
case "$command" in
  build-cuda|test-cuda) build=${BUILD_DIR:-$repo/build-cuda} ;;
  *) build=${BUILD_DIR:-$repo/build} ;;
esac

deps() { "$repo/scripts/install-deps.sh" "$@"; }
configure_and_build() {
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
  cmake --build "$build" -j "$jobs"
}
# PyTorch's libtorch from the project's environment, nvcc from the CUDA toolkit.
# Extra requirements files for the environment (the tests also want diffusers in it).
torch_extras=()
configure_and_build_cuda() {
  local venv torch_root cuda_home=${CUDA_HOME:-/usr/local/cuda}
  venv=$("$repo/scripts/install-torch.sh" "${torch_extras[@]}" | tail -n 1)
  torch_root=$("$venv/bin/python" -c \
    'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("torch").origin))')
  [[ -x $cuda_home/bin/nvcc ]] || { echo "dev.sh: no nvcc under $cuda_home (set CUDA_HOME)" >&2; exit 1; }
  # Its lib/ is searched first, so that TorchConfig finds its libraries there and not a system
  # libtorch (Debian's). (Not the torch folder as a prefix: its bin/protoc would win over the
  # protoc of the protobuf we link.)
  configure_and_build -DCMAKE_PREFIX_PATH="$torch_root/share/cmake" -DCMAKE_LIBRARY_PATH="$torch_root/lib" \
    -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc" \
    -DCUDAToolkit_ROOT="$cuda_home" "$@"
}
run_tests() {
  cd "$build"
  exec ctest --output-on-failure -j "$jobs" --timeout 900 "$@"
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
    run_tests "$@"
    ;;
  build)
    deps
    configure_and_build
    ;;
  build-cuda)
    deps
    configure_and_build_cuda
    ;;
  test-cuda)
    deps --extras
    # diffusers next to torch: tests/diffusers loads converted official models in diffusers itself.
    torch_extras=("$repo/scripts/python/requirements-diffusers.txt")
    configure_and_build_cuda
    run_tests "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh serve|test|build|build-cuda|test-cuda [args...]" >&2
    exit 2
    ;;
esac
