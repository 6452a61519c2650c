#!/usr/bin/env bash
# experiments/ci/run.sh - the CI accuracy gate (.ci/run runs it after the tests): makes the
# synthetic conveyor dataset (make_shapes.py), ingests it, trains experiments/ci/detect.yaml on
# 2 threads (deterministic: the same bytes on every run of the same machine type) and evaluates
# the val split against experiments/ci/baseline.json; `lathe eval` exits 3 with a table of every
# metric (overall and per class) that fell by more than MAX_DROP (default 0.01).
#   UPDATE_BASELINE=1 experiments/ci/run.sh   writes the new report as the baseline instead
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${LATHE_BUILD:-build}
LATHE="$BUILD/lathe"
PY=${PY:-.venv/bin/python}
OUT=${CI_DIR:-out/ci}
# 0.03, not 0.01: the run is bitwise repeatable on one CPU type, but oneDNN's AVX2 and AVX-512
# kernels round differently and the 15 epochs carry it: an AVX2 VM gave val mAP 0.7792 against the
# AVX-512 baseline's 0.7796, with AP75 1.1 and the bolts' AP 2.4 points lower (experiments/ci/README.md)
MAX_DROP=${MAX_DROP:-0.03}
BASELINE=experiments/ci/baseline.json
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)
"$PY" experiments/ci/make_shapes.py "$OUT/src" --count 500 --seed 0
"$LATHE" ingest "$OUT/src" -o "$OUT/dataset" --size 128 --split 0.8,0.2,0 --threads 2
"$LATHE" train experiments/ci/detect.yaml "data.dataset=$OUT/dataset" --runs "$OUT/runs" --threads 2
if [ "${UPDATE_BASELINE:-0}" = 1 ]; then
  "$LATHE" eval "$OUT/runs/ci_detect" --split val
  cp "$OUT/runs/ci_detect/eval/report.json" "$BASELINE"
  echo "baseline updated: $BASELINE"
else
  "$LATHE" eval "$OUT/runs/ci_detect" --split val --baseline "$BASELINE" --max-drop "$MAX_DROP"
fi
echo "CI detection run: $(( $(date +%s) - start )) s; report $OUT/runs/ci_detect/eval/report.html"
