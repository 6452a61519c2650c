#!/usr/bin/env bash
# gpu.sh - the training benchmark on a GPU, run by `make gpu-check`: training images/s of each model
# (forward, loss, backward, SGD with momentum) at one batch on the CPU (every core, fp32) and on
# cuda:0 (fp32, and bf16 mixed precision), in one run, and their ratios; then the detectors at 640
# against PyTorch on the same GPU (gpu_vs_torch.sh). Prints SKIP and exits 0 where no GPU can be
# used or bench_train cannot be built here; exits 1 when a run fails.
# Environment: LATHE_BUILD (build), BATCH (32), CPU_STEPS (3), GPU_STEPS (30), THREADS (nproc),
# MODELS (the classifier and the detector specs beside this file), BENCH_BIN (a prebuilt
# bench_train, e.g. the GPU bundle's: then nothing is compiled).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/train
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BATCH=${BATCH:-32}
CPU_STEPS=${CPU_STEPS:-3}
GPU_STEPS=${GPU_STEPS:-30}
THREADS=${THREADS:-$(nproc)}
MODELS=${MODELS:-"$HERE/resnet_cls.yaml $HERE/detector_n.yaml"}
BIN=${BENCH_BIN:-$BUILD/bench_train}
if [ -z "${BENCH_BIN:-}" ] &&
  ! make -s -C "$ROOT" --no-print-directory bench-train BENCH_TRAIN="$BIN" >"$BUILD/bench_train.log" 2>&1; then
  echo "SKIP training benchmark: bench_train does not build here ($BUILD/bench_train.log; needs liblathe's libraries)"
  exit 0
fi
printf 'training benchmark on the GPU: batch %d, SGD momentum; cpu: fp32, %d threads, %d steps; gpu: %d steps\n' \
  "$BATCH" "$THREADS" "$CPU_STEPS" "$GPU_STEPS"
printf '  %-16s %12s %12s %10s %12s %10s\n' model "cpu img/s" "gpu fp32" "gpu/cpu" "gpu bf16" "bf16/fp32"
for spec in $MODELS; do
  name=$(basename "$spec" .yaml)
  g=$("$BIN" "$spec" "$BATCH" "$GPU_STEPS" "$THREADS" cuda:0 2>"$BUILD/bench_gpu.err")
  rc=$?
  if [ "$rc" = 77 ]; then echo "SKIP training benchmark: $(tail -1 "$BUILD/bench_gpu.err")"; exit 0; fi
  [ "$rc" = 0 ] || { echo "FAIL training benchmark, $name on cuda:0: $(tail -3 "$BUILD/bench_gpu.err")"; exit 1; }
  b=$("$BIN" "$spec" "$BATCH" "$GPU_STEPS" "$THREADS" cuda:0 bf16 2>"$BUILD/bench_gpu.err") ||
    { echo "FAIL training benchmark, $name on cuda:0 in bf16: $(tail -3 "$BUILD/bench_gpu.err")"; exit 1; }
  c=$(OMP_NUM_THREADS=$THREADS "$BIN" "$spec" "$BATCH" "$CPU_STEPS" "$THREADS" cpu) ||
    { echo "FAIL training benchmark, $name on the CPU"; exit 1; }
  python3 - "$name" "$c" "$g" "$b" <<'PY'
import json, sys
name, c, g, b = sys.argv[1], *(json.loads(a)["images_per_s"] for a in sys.argv[2:])
print(f"  {name:16s} {c:12.1f} {g:12.1f} {g / c:10.1f} {b:12.1f} {b / g:10.2f}")
PY
done
BENCH_BIN=$BIN "$HERE/gpu_vs_torch.sh"
