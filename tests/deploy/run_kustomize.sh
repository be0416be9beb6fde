#!/usr/bin/env bash
# Renders every kustomization under deploy/k8s with kubectl's built-in kustomize, checks the
# rendered objects with check_k8s.py --rendered, and requires check_k8s.py's own renderer to
# give the same objects. Needs only kubectl (no cluster). Prints SKIPPED and exits 77 without
# kubectl.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "${1:-$here/../../deploy/k8s}" && pwd)
if ! command -v kubectl >/dev/null 2>&1 || ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "SKIPPED: kubectl (with kustomize) not found"
  exit 77
fi
kubectl version --client 2>/dev/null | head -n 2 || true
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
passed=0
failed=0
while IFS= read -r k; do
  dir=$(dirname "$k")
  rendered="$out/$(echo "${dir#"$root"}" | tr / _).yaml"
  echo "+ kubectl kustomize ${dir#"$root/"}"
  if kubectl kustomize "$dir" >"$rendered" && python3 "$here/check_k8s.py" --root "$root" \
      --rendered "$rendered" --kustomization "$dir"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $dir"
    failed=$((failed + 1))
  fi
done < <(find "$root" -name kustomization.yaml | sort)
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
