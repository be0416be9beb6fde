#!/usr/bin/env bash
# Run here (a Debian machine with the package registries), before a session with a GPU host:
# gathers what bench/gpu_check.sh needs there and cannot fetch itself, into folders git ignores
# and the device tool carries (carry: [".gpu", ".whl"]):
#   .gpu/  the Debian packages of our dependencies and the build scripts (../shared/gpu/fetch-debs.sh)
#   .whl/  diffusers' wheel (pure Python) for the side-by-side rows; the host has torch and transformers
set -euo pipefail
cd "$(dirname "$0")/.."
diffusers_version=${DIFFUSERS_VERSION:-0.42.1}
../shared/gpu/fetch-debs.sh libicu-dev libicu72
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
  -d .whl "diffusers==$diffusers_version"
echo "ready: .gpu/ and .whl/ ($(ls .whl))"
