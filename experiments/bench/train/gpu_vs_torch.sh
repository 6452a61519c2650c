#!/usr/bin/env bash
# gpu_vs_torch.sh - lathe's detector training on a GPU against PyTorch's on the same GPU, run by
# gpu.sh (so by `make gpu-check`): images/s of each detector at each batch at SIZE x SIZE, fp32 and
# bf16 mixed precision, lathe (bench_train) and PyTorch eager (peer_torch.py, the same layers from
# `bench_train SPEC --model-json`), torch.compile of the first model at the first batch in fp32 where
# COMPILE=1 (its compile time left out); the
# peak GPU memory of each process (nvidia-smi, the CUDA context included for both) and the share of
# lathe's step spent in the detection loss on the host; then where lathe's GPU time goes, per layer
# type and slowest layers (LATHE_GPU_PROFILE), for the first model and batch. Prints SKIP and exits
# 0 where no GPU or no PyTorch with CUDA is here.
# Environment: BENCH_BIN (bench_train), SIZE (640), MODELS (detector_n detector_s), BATCHES (32 64),
# STEPS (10), COMPILE (0; 1 adds about two minutes), COMPILE_TIMEOUT (300 s), PYTHON (python3), LOG_DIR (a folder for the raw
# JSON lines and logs; a temporary one).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BIN=${BENCH_BIN:-$ROOT/build/bench_train}
SIZE=${SIZE:-640}
MODELS=${MODELS:-"detector_n detector_s"}
BATCHES=${BATCHES:-"32 64"}
STEPS=${STEPS:-10}
COMPILE=${COMPILE:-0}
PYTHON=${PYTHON:-python3}
LOG=${LOG_DIR:-$(mktemp -d)}
mkdir -p "$LOG"
command -v nvidia-smi >/dev/null || { echo "SKIP lathe vs PyTorch: no nvidia-smi"; exit 0; }
"$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null ||
  { echo "SKIP lathe vs PyTorch: no PyTorch with a usable GPU for $PYTHON"; exit 0; }

# run NAME CMD...: runs one benchmark while sampling its GPU memory; appends
# {"run": NAME, ...its JSON..., "gpu_mib": peak} to $LOG/runs.jsonl. Returns the command's status.
run() {
  local name=$1; shift
  nvidia-smi --query-compute-apps=used_memory --format=csv,noheader,nounits -lms 100 >"$LOG/$name.mem" 2>/dev/null &
  local smi=$!
  "$@" >"$LOG/$name.json" 2>"$LOG/$name.err"
  local rc=$?
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  local mib
  mib=$(sort -n "$LOG/$name.mem" | tail -1)
  if [ "$rc" = 0 ]; then
    "$PYTHON" -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); d["run"]=sys.argv[2]; d["gpu_mib"]=float(sys.argv[3] or "nan"); print(json.dumps(d))' \
      "$LOG/$name.json" "$name" "${mib:-}" >>"$LOG/runs.jsonl"
  else
    echo "  $name failed (rc $rc): $(tail -2 "$LOG/$name.err" | tr '\n' ' ')"
  fi
  return $rc
}

: >"$LOG/runs.jsonl"
fail=0
for m in $MODELS; do
  spec=$LOG/$m-$SIZE.yaml
  printf 'base: %s\nmodel:\n  input: [3, %d, %d]\n  classes: 3\n' "$ROOT/experiments/detect/$m.yaml" "$SIZE" "$SIZE" >"$spec"
  "$BIN" "$spec" --model-json >"$LOG/$m.json" || { echo "FAIL lathe vs PyTorch: $m does not build"; exit 1; }
  first=1
  for b in $BATCHES; do
    for p in fp32 bf16; do
      LATHE_GPU_PROFILE=$first run "lathe-$m-$b-$p" "$BIN" "$spec" "$b" "$STEPS" "$(nproc)" cuda:0 "$p" || fail=1
      run "torch-$m-$b-$p" "$PYTHON" "$ROOT/experiments/bench/train/peer_torch.py" "$LOG/$m.json" "$b" "$STEPS" "$(nproc)" cuda "$p" || fail=1
    done
    if [ "$COMPILE" = 1 ]; then
      COMPILE=0
      run "torchcompile-$m-$b-fp32" timeout "${COMPILE_TIMEOUT:-300}" "$PYTHON" "$ROOT/experiments/bench/train/peer_torch.py" "$LOG/$m.json" "$b" "$STEPS" "$(nproc)" cuda fp32 compile ||
        echo "  (torch.compile did not finish: not in the table)"
    fi
    first=0
  done
done
"$PYTHON" - "$LOG/runs.jsonl" "$SIZE" <<'PY'
import json, sys
runs = {d["run"]: d for d in map(json.loads, open(sys.argv[1]))}
print(f"lathe vs PyTorch {__import__('torch').__version__} training on the GPU, {sys.argv[2]}x{sys.argv[2]}, images/s "
      "(GPU MiB); loss: lathe's host loss share of its step")
print(f"  {'model':11s} {'batch':>5s} {'prec':>5s} {'lathe':>15s} {'torch eager':>15s} {'ratio':>6s} {'loss':>6s} {'compile':>15s}")
for name, d in runs.items():
    if not name.startswith("lathe-"):
        continue
    _, m, b, p = name.split("-")
    t, c = runs.get(f"torch-{m}-{b}-{p}"), runs.get(f"torchcompile-{m}-{b}-{p}")
    cell = lambda r: f"{r['images_per_s']:7.1f} ({r['gpu_mib']:5.0f})" if r else f"{'-':>15s}"
    ratio = f"{d['images_per_s'] / t['images_per_s']:6.2f}" if t else "     -"
    print(f"  {m:11s} {b:>5s} {p:>5s} {cell(d)} {cell(t)} {ratio} {d['loss_ms'] / d['step_ms']:6.1%} {cell(c)}")
PY
set -- $MODELS $BATCHES
for p in fp32 bf16; do
  echo "lathe $1 at batch $3, $p:"
  sed -n '/^GPU time per step/,$p' "$LOG/lathe-$1-$3-$p.err"
done
exit "$fail"
