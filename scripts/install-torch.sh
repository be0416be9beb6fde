#!/usr/bin/env bash
# Installs PyTorch 2.11 (CUDA 13.0 build, from the Python package index) into a project-local virtual
# environment, .cache/torch-venv, never system-wide. Its libtorch is what the CUDA configuration
# (scripts/dev.sh build-cuda) builds against; its Python runs the reference tools that need torch.
# Idempotent: an environment that already matches scripts/python/requirements-torch.txt is left alone.
#   scripts/install-torch.sh [extra requirements files...]   prints the environment's folder last
# TORCH_VENV changes the folder.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${TORCH_VENV:-$repo/.cache/torch-venv}
requirements=("$repo/scripts/python/requirements-torch.txt" "$@")

# Debian's python3 and its venv module (pyenv or conda Pythons elsewhere on PATH are not used).
python=/usr/bin/python3
if [[ ! -x $python ]] || ! $python -c 'import venv, ensurepip' 2>/dev/null; then
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends python3 python3-venv
fi

stamp="$venv/.requirements"
wanted=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$wanted" ]]; then
  echo "install-torch: $venv is up to date" >&2
  echo "$venv"
  exit 0
fi
[[ -x $venv/bin/python ]] || $python -m venv "$venv"
args=()
for r in "${requirements[@]}"; do args+=(-r "$r"); done
start=$(date +%s)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${args[@]}"
echo "$wanted" > "$stamp"
echo "install-torch: installed $(cat "${requirements[@]}" | grep -c '==') pinned packages into $venv in $(( $(date +%s) - start )) s" >&2
echo "$venv"
