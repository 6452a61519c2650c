#!/usr/bin/env bash
# tools/demo.sh - `make demo`: synthesize a factory archive, ingest it, verify it, describe it,
# analyze it, train and evaluate an image-level defect classifier and a defect detector on it.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${LATHE_BUILD:-build}
LATHE="$BUILD/lathe"
OUT=${DEMO_DIR:-out/demo}
rm -rf "$OUT"
mkdir -p "$OUT"
echo "== lathe synth: 300 inspection scenes with sensors and descriptions -> $OUT/archive.tar.zst"
"$LATHE" synth "$OUT/archive.tar.zst" --count 300 --seed 7 --yolo --voc
echo "== lathe ingest (letterbox to 320, shards of 100, parts of one physical part kept in one split)"
"$LATHE" ingest "$OUT/archive.tar.zst" -o "$OUT/dataset" --size 320 --shard-size 100 --group-by 'part[0-9]+'
echo "== lathe verify"
"$LATHE" verify "$OUT/dataset"
echo "== lathe info"
"$LATHE" info "$OUT/dataset"
echo "== lathe analyze (statistics, quality findings, leakage between splits)"
"$LATHE" analyze "$OUT/dataset" -o "$OUT/analysis"
echo "== lathe train: the image-level defect classifier (experiments/classify/defects.yaml)"
"$LATHE" train experiments/classify/defects.yaml "data.dataset=$OUT/dataset" --runs "$OUT/runs"
echo "== lathe eval on the test split"
"$LATHE" eval "$OUT/runs/defects" --split test
echo "== lathe train: the defect detector (experiments/detect/defects.yaml)"
"$LATHE" train experiments/detect/defects.yaml "data.dataset=$OUT/dataset" --runs "$OUT/runs"
echo "== lathe eval: COCO metrics of the detector on the test split"
"$LATHE" eval "$OUT/runs/defects_detector" --split test
echo "== lathe predict: the detector on the test split, boxes drawn"
"$LATHE" predict "$OUT/runs/defects_detector" --dataset "$OUT/dataset" --split test --render -o "$OUT/predict"
echo "demo done: dataset report $OUT/analysis/report.html"
echo "           classifier report $OUT/runs/defects/eval/report.html"
echo "           detector report $OUT/runs/defects_detector/eval/report.html (drawings in $OUT/predict/render)"
