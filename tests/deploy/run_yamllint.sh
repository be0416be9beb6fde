#!/usr/bin/env bash
# yamllint over every YAML file of deploy/ with deploy/.yamllint. Prints SKIPPED and exits 77
# (CTest's skip code) without yamllint (Debian: apt-get install yamllint).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../../deploy}
if ! command -v yamllint >/dev/null 2>&1; then
  echo "SKIPPED: yamllint not found (apt-get install yamllint)"
  exit 77
fi
yamllint --version
mapfile -t files < <(find "$dir" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "FAILED: no YAML files under $dir"
  exit 1
fi
if yamllint --strict -c "$dir/.yamllint" "${files[@]}"; then
  echo "yamllint: ${#files[@]} files clean"
  echo "${#files[@]} passed, 0 failed"
else
  echo "FAILED: yamllint found problems"
  exit 1
fi
