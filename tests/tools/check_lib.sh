# check and FAILED for the tools' shell tests; the caller sets WORK (a scratch folder) first.
FAILED=0
check() {  # check NAME EXPECTED_RC COMMAND...: runs the command, compares its exit code
  local name=$1 expected=$2
  shift 2
  "$@" > "$WORK/out" 2> "$WORK/err"
  local rc=$?
  if [[ $rc -ne $expected ]]; then
    echo "FAIL: $name: exit $rc, expected $expected"; sed 's/^/    /' "$WORK/out" "$WORK/err" | tail -30; FAILED=1
  else
    echo "PASS: $name"
  fi
}
