#!/usr/bin/env bash
# experiments/bench/dist/run.sh - data-parallel training on this machine (docs/SCALE.md):
# 1. the gradient all-reduce against its size (bench_allreduce under mpirun -np RANKS), with the
#    gradients of detector_n and detector_s;
# 2. `lathe train` of the CI's detector (experiments/ci/detect.yaml, 400 conveyor images at 128,
#    EPOCHS epochs) in one process on all cores against mpirun -np RANKS (the cores shared out),
#    alternating, ROUNDS times: wall seconds, training images per second (log.jsonl), and whether
#    the two give the same validation mAP (batch norm keeps per-rank statistics: close, not equal);
#    and the ranks once more with their gradients in one bucket sent after backward
#    (train.bucket_mb=0, "ranks_at_end") against the default buckets sent during backward.
#   ROUNDS=3 EPOCHS=2 RANKS=2 experiments/bench/dist/run.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
BUILD=${LATHE_BUILD:-build}
ROUNDS=${ROUNDS:-3} EPOCHS=${EPOCHS:-2} RANKS=${RANKS:-2}
OUT=${BENCH_DIR:-out/bench-dist}
PY=${PY:-.venv/bin/python}
make -s bench-dist >/dev/null # (lathe itself: make)
MPIRUN=(mpirun $([ "$(id -u)" = 0 ] && echo --allow-run-as-root) --oversubscribe -np "$RANKS")
params() { "$BUILD/lathe" train "experiments/bench/train/$1.yaml" --summary | sed -n 's/^parameters: \([0-9]*\) learnable.*/\1/p'; }
echo "== all-reduce of float gradients over $RANKS ranks (median of 15 after 3 warm-up)"
"${MPIRUN[@]}" "$BUILD/bench_allreduce"
echo "== the gradients of detector_n ($(params detector_n) floats) and detector_s ($(params detector_s) floats)"
"${MPIRUN[@]}" "$BUILD/bench_allreduce" "$(params detector_n)" "$(params detector_s)"
rm -rf "$OUT" && mkdir -p "$OUT"
"$PY" experiments/ci/make_shapes.py "$OUT/src" --count 500 --seed 0 >/dev/null
"$BUILD/lathe" ingest "$OUT/src" -o "$OUT/dataset" --size 128 --split 0.8,0.2,0 >/dev/null 2>&1
cores=$(nproc)
echo "== lathe train experiments/ci/detect.yaml, $EPOCHS epochs: one process on $cores threads against $RANKS ranks"
for r in $(seq 1 "$ROUNDS"); do
  for how in one ranks ranks_at_end; do
    args=(train experiments/ci/detect.yaml "data.dataset=$OUT/dataset" "train.epochs=$EPOCHS" train.device=cpu
          --runs "$OUT/runs" --name "$how" --overwrite)
    [ $how = ranks_at_end ] && args+=(train.bucket_mb=0)
    t0=$(date +%s.%N)
    if [ $how = one ]; then "$BUILD/lathe" "${args[@]}" --threads "$cores" >/dev/null 2>&1
    else "${MPIRUN[@]}" "$BUILD/lathe" "${args[@]}" >/dev/null 2>&1; fi
    t1=$(date +%s.%N)
    "$PY" - "$OUT/runs/$how/log.jsonl" "$how" "$r" "$t0" "$t1" <<'PYEOF'
import json, sys
log = [json.loads(l) for l in open(sys.argv[1])]
ips = sum(e["images_per_s"] * e["seconds"] for e in log) / sum(e["seconds"] for e in log)
print(json.dumps({"round": int(sys.argv[3]), "run": sys.argv[2], "wall_s": round(float(sys.argv[5]) - float(sys.argv[4]), 2),
                  "train_images_per_s": round(ips, 1), "val_map": log[-1]["val_map"], "loss": log[-1]["loss"]}))
PYEOF
  done
done
