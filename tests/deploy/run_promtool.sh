#!/usr/bin/env bash
# promtool checks of deploy/prometheus: the rule files parse and pass their unit tests, and the
# example configuration is valid. Prints SKIPPED and exits 77 (CTest's skip code) without
# promtool (Debian: apt-get install prometheus).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../../deploy/prometheus}
if ! command -v promtool >/dev/null 2>&1; then
  echo "SKIPPED: promtool not found (apt-get install prometheus)"
  exit 77
fi
cd "$dir"
promtool --version 2>&1 | head -n 1
status=0
run() {
  echo "+ $*"
  if ! "$@"; then
    echo "FAILED: $*"
    status=1
  fi
}
run promtool check rules alerts.yml recording_rules.yml
run promtool test rules alerts_test.yml
run promtool check config prometheus.yml
if [[ $status -eq 0 ]]; then
  echo "3 passed, 0 failed"
else
  echo "promtool checks failed"
fi
exit $status
