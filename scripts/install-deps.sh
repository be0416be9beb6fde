#!/usr/bin/env bash
# Installs everything the project needs to build, test and run on Debian 12 / Ubuntu 24.04.
# Idempotent: packages already present are left alone. Needs root (or sudo).
#   scripts/install-deps.sh            build, run and test dependencies
#   scripts/install-deps.sh --extras   also the tools some tests use (prometheus, promtool,
#                                      yamllint, Python gRPC, Node.js, clang for fuzzing)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev
  # Debian's libtorch multiplies matrices with whatever provides libblas.so.3. Without a choice
  # apt picks the reference BLAS, about 30 times slower on our models; BLIS is fast.
  libblis4-pthread
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libspdlog-dev libfmt-dev prometheus-cpp-dev libcivetweb-dev libabsl-dev
  libgtest-dev libgmock-dev nlohmann-json3-dev libpng-dev zlib1g-dev libicu-dev libyaml-dev
  python3 python3-venv curl
)
extras=(
  prometheus yamllint python3-grpcio python3-grpc-tools python3-yaml openssl
  # libFuzzer and the sanitizer runtimes of the default clang (14 on Debian 12, 18 on Ubuntu
  # 24.04): libclang-rt-dev follows clang's version, a pinned libclang-rt-14-dev would not.
  clang libclang-rt-dev llvm
)
if [[ "${1:-}" == "--extras" ]]; then
  packages+=("${extras[@]}")
  # Node.js: a machine may already have it from elsewhere (NodeSource's nodejs bundles npm and
  # conflicts with Debian's npm); take Debian's only when there is none.
  command -v node > /dev/null || packages+=(nodejs)
  command -v npm > /dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
