#!/usr/bin/env bash
# The one-shot GPU check (bench/RESULTS.md): on the GPU host, from the project's root with .gpu/
# (../shared/gpu/README.md) and, for the diffusers rows, diffusers' wheel in .whl/:
#
#   bash bench/gpu_check.sh [--budget 540] [--build-dir build-gpu] [--no-build] [--out DIR]
#
# Stages, each under its own timeout inside one overall budget (9 minutes), each logging to
# <results>/<name>.d/<stage>.log and recorded in stages.tsv whatever its outcome:
#   prepare    GPU name, Debian packages unpacked (.gpu/env.sh), wheels of .whl/ installed
#   model      an ITHQ-shaped random model, written by diffusers itself (bench/make_model.py)
#   build      cmake for this GPU's architecture, only the targets below      } side by side:
#   diffusers  VQDiffusionPipeline, plain at 1 and 32 images, compiled at 32  } CPU cores split
#   kernels    the kernels' and fast path's GPU tests (kernels_test, fast_path_test)
#   parity     CudaParityTest: the float32 reference path against diffusers' H100 goldens
#   server     vqd-bench server, 1 and 64 streaming clients, one request each
#   pipeline   vqd-bench pipeline, 1, 8 and 32 images per call (peak memory at 32)
#   fidelity   vqd-bench fidelity: fp16 and bf16, plain and fast, teacher forced against fp32
#   fidelity-demo  the same on the trained demo model (vqd make-model --preset demo)
# then writes bench/results/gpu-<date>.json and .md (bench/gpu_check_summary.py), also on a
# timeout or failure, with whatever was measured; nothing is ever filled in that was not measured.
# With $OUT set (the device tool), the results are copied there too.
#
#   bash bench/gpu_check.sh --cpu-smoke --build-dir build [--out DIR] [--budget 120]
# runs the same plumbing on the CPU with a tiny model and tiny sizes, using already built
# binaries; the CUDA-only stages report themselves skipped. CTest runs this (gpu_check_cpu_smoke).
set -uo pipefail

mode=gpu
cap=""
budget=""
build_dir=""
no_build=0
out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --cpu-smoke) mode=cpu-smoke ;;
    --budget) budget=$2; shift ;;
    --build-dir) build_dir=$2; shift ;;
    --no-build) no_build=1 ;;
    --out) out=$2; shift ;;
    *) echo "usage: $0 [--cpu-smoke] [--budget S] [--build-dir DIR] [--no-build] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
stamp=$(date -u +%Y-%m-%d-%H%M)
if [[ $mode == gpu ]]; then
  budget=${budget:-540}
  build_dir=${build_dir:-${BUILD_DIR:-build-gpu}}
  results=${out:-bench/results}
  name=gpu-$stamp
else
  budget=${budget:-120}
  build_dir=${build_dir:-build}
  no_build=1
  results=${out:-$(mktemp -d)}
  name=cpu-smoke-$stamp
fi
build_dir=$(cd "$repo" && mkdir -p "$build_dir" && cd "$build_dir" && pwd)
mkdir -p "$results"
work=$results/$name.d
mkdir -p "$work"
stages=$work/stages.tsv
: > "$stages"
start=$(date +%s)
deadline=$((start + budget))
reserve=15  # seconds kept for the summary

say() { echo "[gpu_check $(($(date +%s) - start))s] $*"; }

# record NAME STATUS SECONDS NOTE
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$stages"; }

skip() {  # skip NAME REASON: loud, and recorded
  say "SKIPPED $1: $2"
  record "$1" skipped 0 "$2"
}

# run_stage NAME TIMEOUT MIN_SECONDS CMD...: runs CMD with its output in NAME.log, under
# min(TIMEOUT, what is left of the budget); skipped when less than MIN_SECONDS are left.
run_stage() {
  local stage=$1 limit=$2 min=$3
  shift 3
  local left=$((deadline - $(date +%s) - reserve))
  if ((left < min)); then
    skip "$stage" "out of budget (${left}s left, needs ${min}s)"
    return 1
  fi
  ((limit > left)) && limit=$left
  say "$stage (up to ${limit}s): $*"
  local t0 rc status note=""
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$work/$stage.log" 2>&1
  rc=$?
  if ((rc == 0)); then
    status=ok
    # A GoogleTest binary whose tests all skipped passed nothing: say so.
    if grep -q '^\[  SKIPPED \]' "$work/$stage.log" && ! grep -q '^\[       OK \]' "$work/$stage.log"; then
      status=skipped
      note="every test skipped: $(grep -m1 -o 'no CUDA device[^*]*\|SKIPPED[^*]*GPU[^*]*\|SKIPPED: [^*]*' "$work/$stage.log" | head -1)"
    fi
  elif ((rc == 124 || rc == 137)); then
    status=timeout
    note="killed after ${limit}s"
  else
    status=failed
    note="exit $rc: $(tail -n 3 "$work/$stage.log" | tr '\t\n' '  ' | cut -c1-300)"
  fi
  record "$stage" "$status" "$(($(date +%s) - t0))" "$note"
  say "$stage: $status $note"
  [[ $status == ok || $status == skipped ]]
}

summarize() {
  local gpu_name=${gpu_name:-none}
  python3 "$repo/bench/gpu_check_summary.py" --work "$work" --mode "$mode" --gpu "$gpu_name" \
    --commit "$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --budget "$budget" \
    --json "$results/$name.json" --markdown "$results/$name.md"
  say "results: $results/$name.json and $results/$name.md"
  if [[ -n ${OUT:-} && -d ${OUT:-} && $results != "$OUT" ]]; then
    mkdir -p "$OUT/results" && cp -r "$results/$name.json" "$results/$name.md" "$work" "$OUT/results/" 2>/dev/null
  fi
}
trap summarize EXIT

bench=$build_dir/bench/vqd-bench
vqd=$build_dir/tools/vqd
parity_dir=${VQD_PARITY_DIR:-}
for candidate in "$repo/../shared/parity" "$repo/shared/parity"; do
  [[ -z $parity_dir && -d $candidate/tiny ]] && parity_dir=$candidate
done
export VQD_PARITY_DIR=${parity_dir:-$repo/../shared/parity}

# ---- prepare -------------------------------------------------------------------------------------
if [[ $mode == gpu ]]; then
  gpu_name=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)
  [[ -n $gpu_name ]] || { say "no GPU visible (nvidia-smi): this is the GPU check; use --cpu-smoke elsewhere"; exit 1; }
  say "GPU: $gpu_name (compute capability ${cap:-?})"
  prepare() {
    set -e
    if [[ -f .gpu/env.sh ]]; then
      source .gpu/env.sh
    elif [[ $no_build == 0 ]]; then
      echo "no .gpu/env.sh: run bench/gpu_check_prepare.sh on a Debian machine and carry .gpu/" >&2
      exit 1
    fi
    if compgen -G ".whl/*.whl" > /dev/null; then
      python3 -m pip install --no-index --no-deps --target /tmp/vqd-site .whl/*.whl
    fi
  }
  run_stage prepare 60 5 bash -c "$(declare -f prepare); no_build=$no_build prepare"
  python_ld=${LD_LIBRARY_PATH:-}  # Python keeps the host's libraries; our binaries get the unpacked ones too
  [[ -f .gpu/env.sh ]] && source .gpu/env.sh
  [[ -d /tmp/vqd-site ]] && export PYTHONPATH=/tmp/vqd-site${PYTHONPATH:+:$PYTHONPATH}
  model=${MODEL:-/tmp/vqd-ithq-random}
  device=cuda:0
else
  gpu_name="none (CPU smoke run)"
  python_ld=${LD_LIBRARY_PATH:-}
  say "CPU smoke run with the binaries of $build_dir"
  for bin in "$bench" "$vqd"; do
    [[ -x $bin ]] || { say "$bin is missing: build first (cmake --build $build_dir)"; exit 1; }
  done
  record prepare ok 0 "binaries of $build_dir"
  model=$work/model
  device=cpu
fi
py=(env LD_LIBRARY_PATH="$python_ld" python3)
has_diffusers=0
"${py[@]}" -c 'import diffusers, transformers' > /dev/null 2>&1 && has_diffusers=1

# ---- model ---------------------------------------------------------------------------------------
if [[ -f $model/model_index.json ]]; then
  record model ok 0 "reused $model"
elif [[ $has_diffusers == 1 ]]; then
  preset=ithq
  [[ $mode == cpu-smoke ]] && preset=tiny
  run_stage model 120 20 "${py[@]}" bench/make_model.py --preset "$preset" --out "$model"
else
  say "diffusers is not importable: the model comes from vqd make-model after the build"
fi

# ---- build, with diffusers beside it -------------------------------------------------------------
cores=$(nproc)
build_targets="vqd vqd-bench pipeline_parity_test kernels_test fast_path_test"
build() {
  set -e
  local arch=${cap:-9.0} nvcc=()
  [[ -x ${CUDA_HOME:-/usr/local/cuda}/bin/nvcc ]] && nvcc=(-DCMAKE_CUDA_COMPILER="${CUDA_HOME:-/usr/local/cuda}/bin/nvcc")
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTORCH_CUDA_ARCH_LIST="$arch" "${nvcc[@]}" \
    -DCMAKE_PREFIX_PATH="$TORCH_CMAKE_PREFIX;$VQD_DEPS/usr" -DVQD_DEPS_PREFIX="$VQD_DEPS/usr" \
    -DCMAKE_EXE_LINKER_FLAGS="-L$VQD_DEPS/usr/lib/x86_64-linux-gnu" \
    -DCMAKE_SHARED_LINKER_FLAGS="-L$VQD_DEPS/usr/lib/x86_64-linux-gnu"
  cmake --build "$build_dir" -j "$build_jobs" --target $build_targets
}
diffusers_stage() {
  local images=1,32 compile=32 steps=100 dev=cuda
  if [[ $mode == cpu-smoke ]]; then images=1; compile=""; steps=3; dev=cpu; fi
  run_stage diffusers 300 60 $diffusers_pin "${py[@]}" bench/diffusers_baseline.py --model "$model" --device "$dev" \
    --images "$images" --compile-images "$compile" --steps "$steps" --json "$work/diffusers.json"
}
diffusers_done=0
diffusers_pin=""
build_jobs=$cores
if [[ $no_build == 1 ]]; then
  skip build "uses the binaries of $build_dir"
elif [[ $has_diffusers == 1 && -f $model/model_index.json && $cores -ge 4 ]]; then
  # Two cores for diffusers (its Python launches kernels), the rest for the compiler.
  build_jobs=$((cores - 2))
  diffusers_pin="taskset -c 0,1"
  run_stage build 300 60 taskset -c "2-$((cores - 1))" bash -c "$(declare -f build); build_dir=$build_dir build_jobs=$build_jobs cap=$cap build_targets='$build_targets' build" &
  build_pid=$!
  diffusers_stage
  diffusers_done=1
  diffusers_pin=""
  wait "$build_pid"
else
  run_stage build 300 60 bash -c "$(declare -f build); build_dir=$build_dir build_jobs=$build_jobs cap=$cap build_targets='$build_targets' build"
fi
if [[ ! -f $model/model_index.json && -x $vqd ]]; then
  preset=ithq
  [[ $mode == cpu-smoke ]] && preset=tiny
  run_stage model 120 20 "$vqd" make-model --preset "$preset" --dtype fp16 --out "$model"
fi
[[ -f $model/model_index.json ]] || { say "no model: nothing to measure"; exit 1; }

# ---- correctness first ---------------------------------------------------------------------------
gtest_filter=""
[[ $mode == cpu-smoke ]] && gtest_filter="--gtest_filter=*Cuda*"  # the GPU halves: they skip, loudly
kernels_tests() {
  "$build_dir/tests/kernels/kernels_test" $gtest_filter && "$build_dir/tests/kernels/fast_path_test" $gtest_filter
}
run_stage kernels 150 20 bash -c "$(declare -f kernels_tests); build_dir=$build_dir gtest_filter='$gtest_filter' kernels_tests"
run_stage parity 120 20 "$build_dir/tests/core/pipeline_parity_test" --gtest_filter='CudaParityTest.*'

# ---- measurements --------------------------------------------------------------------------------
if [[ $mode == gpu ]]; then
  server_args=(--device "$device" --dtype fp16 --max-batch 128 --clients "1,64" --steps 100)
  pipeline_args=(--device "$device" --dtype fp16 --images "1,8,32" --steps 100)
  fidelity_args=(--device "$device" --dtypes "fp16,bf16" --seeds 1 --steps 100 --every 10)
else
  server_args=(--device cpu --dtype fp32 --fused on --max-batch 8 --clients "1,4" --steps 4)
  pipeline_args=(--device cpu --dtype fp32 --fused on --images "1,2" --steps 3)
  # Plumbing only: the fast path's 2x goal (fidelity's default --max-ratio) is about fp16 on a GPU
  # with real weights, not a tiny random model in bf16 on the CPU, so it is not enforced here.
  fidelity_args=(--device cpu --dtypes bf16 --seeds 1 --steps 4 --every 2 --max-ratio 0)
fi
run_stage server 210 40 "$bench" server --model "$model" "${server_args[@]}" --requests-per-client 1 \
  --json "$work/server.json"
run_stage pipeline 180 40 "$bench" pipeline --model "$model" "${pipeline_args[@]}" --json "$work/pipeline.json"
run_stage fidelity 150 30 "$bench" fidelity --model "$model" "${fidelity_args[@]}" --json "$work/fidelity.json"
# The same measure on the trained demo model (built into vqd): random weights give nearly flat
# distributions, on which half precision can hardly flip an argmax.
demo="$work/demo-model"
rm -rf "$demo"
run_stage demo-model 30 5 "$vqd" make-model --preset demo --out "$demo" &&
  run_stage fidelity-demo 60 10 "$bench" fidelity --model "$demo" "${fidelity_args[@]}" --json "$work/fidelity-demo.json"
if [[ $diffusers_done == 0 ]]; then
  if [[ $has_diffusers == 0 ]]; then
    skip diffusers "diffusers is not importable (bench/gpu_check_prepare.sh puts its wheel in .whl/)"
  else
    diffusers_stage
  fi
fi
exit 0
