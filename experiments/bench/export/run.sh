#!/usr/bin/env bash
# run.sh - the export benchmark: inference latency of the same model on lathe's own training graph
# (bench_infer.c graph: unfused, BN and activations as their own layers), on lathe's engine through
# the C API (bench_infer.c engine: `lathe export --format lathe`, BN folded) and on onnxruntime running
# its ONNX export (peer_ort.py: BN folded, onnxruntime's graph optimizations), CPU, same threads,
# batch 1 and 32, for a detector (detector_n at 128, the CI's) and a classifier (the training
# benchmark's ResNet at 96). The models are trained one epoch on a small `lathe synth` dataset
# (latency does not depend on the weights). lathe and onnxruntime take turns, ROUNDS times.
# Prints per model and batch the median ms per batch of each and the ratio engine / onnxruntime
# (target: at most 1.0).
# Environment: LATHE_BUILD (build), THREADS (nproc), REPS (20), ROUNDS (3), OUT (out/bench/export),
# PY (.venv/bin/python, with onnxruntime: make deps). Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/export
cd "$ROOT"
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-20}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-out/bench/export}
PY=${PY:-.venv/bin/python}
die() { echo "bench: error: $*" >&2; exit 1; }
"$PY" -c 'import onnxruntime' 2>/dev/null || die "$PY lacks onnxruntime (make deps)"
make -s --no-print-directory BUILD_DIR="${LATHE_BUILD:-build}" all bench-export >/dev/null || die "cannot build lathe and bench_infer"
LATHE=$BUILD/lathe
rm -rf "$OUT" && mkdir -p "$OUT"
"$LATHE" synth "$OUT/archive.tar.zst" --count 64 --seed 3 >/dev/null 2>&1
"$LATHE" ingest "$OUT/archive.tar.zst" -o "$OUT/ds" --size 128 --split 0.75,0.25,0 >/dev/null 2>&1
"$LATHE" train experiments/detect/detector_n.yaml "data.dataset=$OUT/ds" "model.input=[3,128,128]" train.epochs=1 \
  --runs "$OUT/runs" --name detector_n >/dev/null 2>&1 || die "cannot train the detector"
"$LATHE" train experiments/bench/train/resnet_cls.yaml "data.dataset=$OUT/ds" train.epochs=1 \
  --runs "$OUT/runs" --name resnet_cls >/dev/null 2>&1 || die "cannot train the classifier"
printf 'export benchmark: CPU, %d threads, median of %d batches after 3 warm-ups, %d rounds (onnxruntime %s)\n' \
  "$THREADS" "$REPS" "$ROUNDS" "$("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
printf '  %-12s %6s %12s %12s %12s %12s %12s\n' model batch "graph ms" "engine ms" "ort ms" "engine/ort" "ratio range"
for model in detector_n resnet_cls; do
  run=$OUT/runs/$model
  "$LATHE" export "$run" -o "$OUT/$model.onnx" >/dev/null || die "cannot export $model"
  "$LATHE" export "$run" -o "$OUT/$model.lathe" --format lathe >/dev/null || die "cannot export $model as an engine"
  for batch in 1 32; do
    rounds=()
    for ((r = 0; r < ROUNDS; r++)); do
      rounds+=("$(OMP_NUM_THREADS=$THREADS "$BUILD/bench_infer" graph "$run" "$run/checkpoints/best.safetensors" "$batch" "$REPS" "$THREADS")")
      rounds+=("$(OMP_NUM_THREADS=$THREADS "$BUILD/bench_infer" engine "$OUT/$model.lathe" "$batch" "$REPS" "$THREADS")")
      rounds+=("$("$PY" "$HERE/peer_ort.py" "$OUT/$model.onnx" "$batch" "$REPS" "$THREADS")")
    done
    python3 - "$model" "$batch" "${rounds[@]}" <<'PYEND'
import json, statistics, sys
name, batch, runs = sys.argv[1], sys.argv[2], [json.loads(a) for a in sys.argv[3:]]
graph, engine, ort = runs[0::3], runs[1::3], runs[2::3]
ratios = [e["ms_per_batch"] / o["ms_per_batch"] for e, o in zip(engine, ort)]
med = lambda rows: statistics.median(r["ms_per_batch"] for r in rows)
print(f"  {name:12s} {batch:>6s} {med(graph):12.2f} {med(engine):12.2f} {med(ort):12.2f} {statistics.median(ratios):12.2f} "
      f"{min(ratios):5.2f}-{max(ratios):.2f}")
PYEND
  done
done
