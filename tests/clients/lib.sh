# Helpers shared by the client test scripts (sourced, not run).
#   REPO_ROOT          the repository
#   skip WHY           prints "SKIPPED: WHY" and exits 77 (CTest's SKIP_RETURN_CODE)
#   fail WHY           prints "FAIL: WHY" and exits 1
#   find_python_grpc   prints a Python interpreter that has grpcio, protobuf and a proto compiler
#   check_png FILE W H checks the PNG signature and the IHDR width and height

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

# $VQD_PYTHON first, then python3 on PATH, then Debian's (where python3-grpcio installs).
find_python_grpc() {
  local py
  for py in ${VQD_PYTHON:-} python3 /usr/bin/python3; do
    command -v "$py" >/dev/null 2>&1 || continue
    if "$py" - <<'PY' >/dev/null 2>&1
import importlib.util, shutil, sys
import grpc, google.protobuf  # noqa: F401
sys.exit(0 if importlib.util.find_spec("grpc_tools") or shutil.which("protoc") else 1)
PY
    then
      echo "$py"
      return 0
    fi
  done
  return 1
}

# Reads a 4-byte big-endian integer at OFFSET of FILE.
_be32() { echo $((16#$(od -An -tx1 -j "$2" -N4 "$1" | tr -d ' \n'))); }

check_png() {
  local file=$1 width=$2 height=$3
  [ -s "$file" ] || fail "$file is missing or empty"
  [ "$(od -An -tx1 -N8 "$file" | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$file does not start with the PNG signature"
  [ "$(od -An -tx1 -j12 -N4 "$file" | tr -d ' \n')" = 49484452 ] || fail "$file has no IHDR chunk first"
  local w h
  w=$(_be32 "$file" 16)
  h=$(_be32 "$file" 20)
  [ "$w" = "$width" ] && [ "$h" = "$height" ] || fail "$file is ${w}x${h}, ModelInfo says ${width}x${height}"
  echo "ok: $file (${w}x${h})"
}
