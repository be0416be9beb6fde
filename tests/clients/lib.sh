# Helpers shared by the client test scripts (sourced, not run).
#   REPO_ROOT          the repository
#   skip WHY           prints "SKIPPED: WHY" and exits 77 (CTest's SKIP_RETURN_CODE)
#   fail WHY           prints "FAIL: WHY" and exits 1
#   find_python_grpc   prints a Python interpreter that has grpcio, protobuf and a proto compiler
#   ensure_node_modules installs client/node's locked packages (npm ci, or the archive of them in
#                      ../shared/node where the npm registry cannot be reached); fails if neither works
#   check_png FILE W H checks the PNG signature and the IHDR width and height
#   check_tokens OUT N checks OUT/tokens.json: N final grids of the size OUT/info.json gives

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

# The packages of client/node/package-lock.json. Tests run in parallel, so one installs while the
# others wait on the lock. $VQD_NODE_MODULES_ARCHIVE overrides the archive's path.
ensure_node_modules() {
  local dir="$REPO_ROOT/client/node"
  local archive=${VQD_NODE_MODULES_ARCHIVE:-$REPO_ROOT/../shared/node/client-node-modules.tar.gz}
  command -v node >/dev/null 2>&1 || fail "node is not installed (scripts/install-deps.sh --extras installs it)"
  # Folders are not proof: an npm ci that cannot reach the registry may leave them half-filled
  # and still exit 0.
  modules_load() { (cd "$dir" && node -e 'require("@grpc/grpc-js"); require("@grpc/proto-loader")') >/dev/null 2>&1; }
  (
    flock 9
    modules_load && exit 0
    if command -v npm >/dev/null 2>&1 &&
       timeout 120 npm ci --prefix "$dir" --no-audit --no-fund --fetch-retries=0 --fetch-timeout=15000 >&2 &&
       modules_load; then
      echo "installed the node client's packages with npm ci" >&2
    elif [ -f "$archive" ]; then
      rm -rf "$dir/node_modules"
      tar -xzf "$archive" -C "$dir" || exit 1
      echo "npm ci could not install the packages; unpacked the locked ones from $archive" >&2
    else
      echo "npm ci failed and there is no $archive" >&2
      exit 1
    fi
    modules_load
  ) 9> "${TMPDIR:-/tmp}/vqd-node-modules.lock" || fail "cannot install @grpc/grpc-js and @grpc/proto-loader for client/node"
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

check_tokens() {
  local out=$1 count=$2
  command -v python3 >/dev/null 2>&1 || fail "python3 is needed to read $out/tokens.json"
  python3 - "$out/info.json" "$out/tokens.json" "$count" <<'PY' || fail "$out/tokens.json is not $count final grids"
import json, sys
info, doc, count = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
h, w, codes = int(info["grid_height"]), int(info["grid_width"]), int(info["codebook_size"])
grids = doc["tokens"]
assert len(grids) == count, f"{len(grids)} grids"
assert (int(doc["height"]), int(doc["width"])) == (h, w), (doc["height"], doc["width"], h, w)
for g in grids:
    assert len(g) == h * w, f"a grid of {len(g)} tokens, expected {h * w}"
    assert all(0 <= int(t) < codes for t in g), "a final grid holds a masked or out-of-range token"
print(f"ok: {sys.argv[2]} ({count} grids of {h}x{w})")
PY
}

# exercise_client NAME OUT WIDTH HEIGHT CLIENT... [-- EXTRA_GENERATE_ARGS...]: through one client
# (whose `info --json` is in OUT/info.json), a 2-image, 5-step generation (progress to step 5/5, a
# done line, two PNGs of WIDTH x HEIGHT in OUT/img-*.png, no third, their final token grids in
# OUT/tokens.json) and an out-of-range request (exit code 5).
exercise_client() {
  local name=$1 out=$2 width=$3 height=$4
  shift 4
  local client=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do client+=("$1"); shift; done
  [ $# -gt 0 ] && shift && extra=("$@")
  local rc=0
  "${client[@]}" generate --prompt "a small red boat on a lake" --num-images 2 --steps 5 --seed 1 --progress-every 1 \
    --request-id "$name-client-test" --out "$out/img" --save-tokens "$out/tokens.json" "${extra[@]}" \
    > "$out/generate.out" 2> "$out/generate.err" || rc=$?
  cat "$out/generate.err" "$out/generate.out"
  [ "$rc" -eq 0 ] || fail "generate exited $rc"
  grep -q "^done: " "$out/generate.out" || fail "generate printed no done: summary"
  grep -q "^step 5/5 " "$out/generate.err" || fail "generate printed no progress for step 5/5"
  check_png "$out/img-0.png" "$width" "$height"
  check_png "$out/img-1.png" "$width" "$height"
  [ ! -e "$out/img-2.png" ] || fail "a third image was written"
  check_tokens "$out" 2
  # The official samplers' fields and previews (against the real server only: VQD_TEST_SAMPLERS=1):
  # a time stride of 10 visits 11 timesteps of the tiny model's 100-step schedule; its grid goes to
  # OUT/sampler/tokens.json (compared by the caller).
  if [ "${VQD_TEST_SAMPLERS:-0}" = 1 ]; then
    mkdir -p "$out/sampler" && cp "$out/info.json" "$out/sampler/info.json"
    rc=0
    "${client[@]}" generate --prompt "a small red boat on a lake" --time-stride 10 --prior-rule purity --prior-weight 1 \
      --seed 2 --progress-every 1 --preview-every 5 --out "$out/sampler/img" --save-tokens "$out/sampler/tokens.json" \
      "${extra[@]}" \
      > "$out/sampler.out" 2> "$out/sampler.err" || rc=$?
    [ "$rc" -eq 0 ] || fail "generate --time-stride 10 --prior-rule purity exited $rc: $(cat "$out/sampler.err")"
    grep -q "^step 11/11 " "$out/sampler.err" || fail "a time stride of 10 did not report step 11/11: $(cat "$out/sampler.err")"
    check_tokens "$out/sampler" 1
    # Previews after steps 5 and 10 of 11 (the tiny model's images are already small).
    check_png "$out/sampler/img-step05-0.png" "$width" "$height"
    check_png "$out/sampler/img-step10-0.png" "$width" "$height"
    [ ! -e "$out/sampler/img-step11-0.png" ] || fail "a preview after the last step"
    rc=0
    "${client[@]}" generate --prompt x --prior-rule uniform --prior-weight 1 --out "$out/bad" --quiet 2> "$out/invalid.err" || rc=$?
    [ "$rc" -eq 5 ] || fail "generate --prior-rule uniform --prior-weight 1 exited $rc, expected 5: $(cat "$out/invalid.err")"
  fi
  # An out-of-range field is INVALID_ARGUMENT: exit code 5.
  rc=0
  "${client[@]}" generate --prompt x --steps 0 --out "$out/bad" --quiet 2> "$out/invalid.err" || rc=$?
  [ "$rc" -eq 5 ] || fail "generate --steps 0 exited $rc, expected 5: $(cat "$out/invalid.err")"
  echo "PASS: $name client"
}
