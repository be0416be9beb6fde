#!/usr/bin/env bash
# check_linked_library.sh BINARY LIBRARY: passes when the dynamic loader resolves LIBRARY for
# BINARY (ldd lists it with a path), and prints where it was found.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BINARY LIBRARY" >&2; exit 2; }
line=$(ldd "$1" | grep -F "$2" || true)
if [[ -z $line ]]; then
  echo "FAIL: $1 does not link $2; ldd says:" >&2
  ldd "$1" >&2
  exit 1
fi
if [[ $line == *"not found"* ]]; then
  echo "FAIL: $1 links $2 but the loader cannot find it: $line" >&2
  exit 1
fi
echo "$(basename "$1") links $line"
