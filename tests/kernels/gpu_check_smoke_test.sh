#!/usr/bin/env bash
# CTest (gpu_check_cpu_smoke): bench/gpu_check.sh --cpu-smoke with this build's binaries, so that
# the one-shot GPU check's plumbing (stages, timeouts, budget, partial results, JSON and markdown)
# is proven on the CPU before a GPU ever runs it.
#   gpu_check_smoke_test.sh REPO BUILD_DIR
set -euo pipefail
repo=$1
build=$2
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# 1. A whole run with a tiny model: the measuring stages run, the CUDA-only ones skip loudly.
bash "$repo/bench/gpu_check.sh" --cpu-smoke --build-dir "$build" --out "$out/full" --budget 200
# 2. A budget too small for anything: it still ends with its JSON, every measure null.
if bash "$repo/bench/gpu_check.sh" --cpu-smoke --build-dir "$build" --out "$out/starved" --budget 16; then
  echo "a run without a model must fail" >&2
  exit 1
fi

python3 - "$out" <<'PY'
import glob
import json
import sys

out = sys.argv[1]
required = ["gpu", "date", "commit", "throughput_64_clients_images_per_s", "single_request_s",
            "first_progress_ms_1_client", "first_progress_ms_64_clients", "peak_memory_gib_32_in_flight",
            "fidelity", "diffusers"]

[full] = glob.glob(f"{out}/full/cpu-smoke-*.json")
r = json.load(open(full))
missing = [k for k in required if k not in r]
assert not missing, f"missing keys {missing}"
status = {s["stage"]: s["status"] for s in r["stages"]}
for stage in ("server", "pipeline", "fidelity", "demo-model", "fidelity-demo"):
    assert status.get(stage) == "ok", (stage, status)
for stage in ("kernels", "parity", "build"):  # CUDA-only or not done in a smoke run
    assert status.get(stage) == "skipped", (stage, status)
assert r["single_request_s"] and r["single_request_s"] > 0, r["single_request_s"]
assert r["first_progress_ms_1_client"] is not None
assert r["throughput_64_clients_images_per_s"] is None, "the smoke run has 4 clients: nothing may be invented for 64"
assert r["peak_memory_gib_32_in_flight"] is None
assert "bf16 fast" in r["fidelity"] and "bf16 plain" in r["fidelity"], r["fidelity"]
assert "bf16 fast" in r["fidelity_demo_model"], r["fidelity_demo_model"]
assert r["raw"]["pipeline"]["info"]["fused"] is True
md = open(full[:-len(".json")] + ".md").read()
assert "| server | ok |" in md and "not measured" in md, md
assert "Fidelity (the trained demo model):" in md, md

[starved] = glob.glob(f"{out}/starved/cpu-smoke-*.json")
s = json.load(open(starved))
assert all(k in s for k in required)
assert s["single_request_s"] is None and s["fidelity"] is None
assert any(st["stage"] == "model" and st["status"] == "skipped" for st in s["stages"]), s["stages"]
print("gpu_check smoke: OK; 1 client on the CPU:", r["single_request_s"], "s")
PY
