#!/usr/bin/env bash
# run.sh - the accuracy benchmark (README.md beside this file): lathe's detector_n against
# Ultralytics YOLOv8n, both trained from scratch on the CPU on the same pixels, the same train/val
# split, input size, epochs and batch, then both scored on the same val images by `lathe eval
# --detections` and by pycocotools (which must agree to 1e-6). Prints the table and writes
# OUT/accuracy.json.
#   (a) shapes: the CI dataset, made exactly as experiments/ci/run.sh makes it (make_shapes.py, 500
#       images, ingest --size 128 --split 0.8,0.2,0), lathe trained with experiments/ci/detect.yaml
#   (b) tiles: a tiled lathe dataset (the demo's defect tiles; first argument, or TILES, default
#       out/demo/tiles; skipped with a message when missing), lathe trained with the demo's recipe
#       (experiments/detect/defects.yaml) at the tile size; each side trains on every tile with a
#       box and a share TILE_BACKGROUND of the empty ones (lathe draws its share afresh each epoch,
#       the export keeps a fixed one for Ultralytics), both scored on the test split's tiles (the
#       demo's val split, 51 photos, is too small to score on; it is what each side picks its best
#       epoch by)
# usage: experiments/bench/accuracy/run.sh [TILES_DATASET]
# Environment: EPOCHS (15, as the CI spec), TILE_EPOCHS (10, as the demo's), TILE_BACKGROUND (0.1,
# as the demo's), THREADS (2), OUT (out/bench/accuracy), LATHE_BUILD
# (build), TILES (out/demo/tiles), SHAPES_COUNT (500: fewer for a quick test), DATASETS ("shapes
# tiles"), VENV (.venv-ultralytics: made on first use with PyPI's ultralytics, pycocotools, h5py,
# hdf5plugin; no weights are downloaded, ever), FONT (a local TTF Ultralytics gets as Arial.ttf).
# Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/accuracy
cd "$ROOT"
abs() { case $1 in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
BUILD=$(abs "${LATHE_BUILD:-build}")
LATHE=$BUILD/lathe
EPOCHS=${EPOCHS:-15}
TILE_EPOCHS=${TILE_EPOCHS:-10}
TILE_BACKGROUND=${TILE_BACKGROUND:-0.1}
THREADS=${THREADS:-2}
OUT=$(abs "${OUT:-out/bench/accuracy}")
TILES=$(abs "${1:-${TILES:-out/demo/tiles}}")
SHAPES_COUNT=${SHAPES_COUNT:-500}
DATASETS=${DATASETS:-shapes tiles}
VENV=$(abs "${VENV:-.venv-ultralytics}")
FONT=${FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf}
PY=$VENV/bin/python
# the versions measured in docs/PERFORMANCE.md; torch's wheel brings its CUDA libraries (~5 GB)
PACKAGES="ultralytics==8.4.190 torch==2.15.0 torchvision==0.29.2 pycocotools==2.0.11 h5py==3.16.0 hdf5plugin==7.1.0"
die() { echo "accuracy: error: $*" >&2; exit 1; }
say() { echo "accuracy: $*" >&2; }

[ -x "$LATHE" ] || die "$LATHE not built (make, or LATHE_BUILD=DIR)"
[ -f "$FONT" ] || die "no font $FONT (apt-get install fonts-dejavu-core, or FONT=some.ttf)"
mkdir -p "$OUT"
# Ultralytics: no network, no weights, no auto-installs; its settings and font in a folder we own
# (set before anything imports it: the import writes its settings file there)
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false YOLO_CONFIG_DIR=$OUT/yolo-config
mkdir -p "$YOLO_CONFIG_DIR"
cp "$FONT" "$YOLO_CONFIG_DIR/Arial.ttf"
cp "$FONT" "$YOLO_CONFIG_DIR/Arial.Unicode.ttf"
if ! "$PY" -c 'import ultralytics, pycocotools, h5py, hdf5plugin' 2>/dev/null; then
  say "creating $VENV with $PACKAGES (once)"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
  "$VENV/bin/pip" install --quiet --progress-bar off $PACKAGES || die "pip install failed"
fi
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS

# the machine's load every 30 s (a shared machine skews the training times: accuracy.json keeps it)
( while :; do echo "$(date +%s) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 30; done ) >"$OUT/load.txt" &
LOADER=$!
trap 'kill $LOADER 2>/dev/null || true' EXIT

now() { date +%s.%N; }

# one side's detections DIR/dets.json scored both ways into DIR/score.json
score() {
  local dir=$1 gt=$2
  "$LATHE" eval --detections "$dir/dets.json" --gt "$gt" -o "$dir/eval" --log-format json >"$dir/eval.txt" 2>"$dir/eval.log" ||
    die "lathe eval --detections failed on $dir/dets.json (see $dir/eval.log)"
  "$PY" "$HERE/bench.py" score "$gt" "$dir/dets.json" "$dir/eval/report.json" "$dir/score.json"
}

# run_dataset NAME DATASET SPEC EPOCHS BACKGROUND SPLIT: export, train (each side picks its best epoch
# on val) and score both sides on SPLIT (val or test) into OUT/NAME
run_dataset() {
  local name=$1 ds=$2 spec=$3 epochs=$4 background=$5 split=$6 dir=$OUT/$1
  local size
  size=$("$PY" -c 'import json,sys; h,w=json.load(open(sys.argv[1]))["image_size"]; print(h if h==w and h>0 else "")' "$ds/manifest.json")
  [ -n "$size" ] || die "$ds: stored images are not square (or not pixels); both sides need one square input size"
  rm -rf "$dir/export" "$dir/lathe" "$dir/ultralytics"
  mkdir -p "$dir/lathe" "$dir/ultralytics"
  "$PY" "$HERE/export_yolo.py" "$ds" "$dir/export" --background "$background" $([ "$split" = test ] && echo --test)

  say "$name: lathe trains $spec (model.input ${size}x$size, $epochs epochs, background $background, $THREADS threads)"
  local t0 t1
  t0=$(now)
  "$LATHE" train "$spec" "data.dataset=$ds" "model.input=[3,$size,$size]" "train.epochs=$epochs" "data.background=$background" \
    --runs "$dir/lathe" --name run --overwrite --threads "$THREADS" 2>"$dir/lathe/train.log" ||
    die "lathe train failed (see $dir/lathe/train.log)"
  t1=$(now)
  "$LATHE" predict "$dir/lathe/run" "$dir/export/images/$split" -o "$dir/lathe/predict" --conf 0.001 --iou 0.7 \
    --max-det 100 --threads "$THREADS" 2>"$dir/lathe/predict.log" || die "lathe predict failed (see $dir/lathe/predict.log)"
  "$PY" "$HERE/bench.py" lathe-dets "$dir/lathe/predict" "$dir/lathe/dets.json"
  score "$dir/lathe" "$dir/export/gt_$split.json"
  "$PY" "$HERE/bench.py" result lathe "$dir/lathe" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "$split"

  # Ultralytics gets lathe's resolved batch and close_mosaic (the run's config.yaml)
  local batch close
  read -r batch close < <("$PY" -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1]))
print(c["train"]["batch"], (c["data"].get("augment") or {}).get("close_mosaic", 0))' "$dir/lathe/run/config.yaml")
  [ -n "$close" ] || die "cannot read train.batch and data.augment.close_mosaic from $dir/lathe/run/config.yaml"
  say "$name: Ultralytics trains yolov8n.yaml (imgsz $size, $epochs epochs, batch $batch = nbs, close_mosaic $close, $THREADS threads)"
  "$PY" "$HERE/yolo_side.py" "$dir/export" "$dir/ultralytics" --imgsz "$size" --epochs "$epochs" --batch "$batch" \
    --close-mosaic "$close" --threads "$THREADS" --split "$split" >"$dir/ultralytics/train.log" 2>&1 ||
    { tail -20 "$dir/ultralytics/train.log" >&2; die "Ultralytics failed (see $dir/ultralytics/train.log)"; }
  tail -1 "$dir/ultralytics/train.log"
  score "$dir/ultralytics" "$dir/export/gt_$split.json"
  "$PY" "$HERE/bench.py" result ultralytics "$dir/ultralytics" \
    "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["train_seconds"])' "$dir/ultralytics/summary.json")" "$split"
}

START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
for name in $DATASETS; do
  case $name in
  shapes)
    # exactly as experiments/ci/run.sh makes the CI dataset
    rm -rf "$OUT/shapes"
    mkdir -p "$OUT/shapes"
    "$PY" experiments/ci/make_shapes.py "$OUT/shapes/src" --count "$SHAPES_COUNT" --seed 0
    "$LATHE" ingest "$OUT/shapes/src" -o "$OUT/shapes/dataset" --size 128 --split 0.8,0.2,0 --threads "$THREADS" \
      2>"$OUT/shapes/ingest.log" || die "ingest failed (see $OUT/shapes/ingest.log)"
    run_dataset shapes "$OUT/shapes/dataset" experiments/ci/detect.yaml "$EPOCHS" 1 val
    ;;
  tiles)
    if [ ! -f "$TILES/manifest.json" ]; then
      say "tiles: no dataset at $TILES (give one as the argument or TILES=); skipped"
      rm -rf "$OUT/tiles"
      continue
    fi
    run_dataset tiles "$TILES" experiments/detect/defects.yaml "$TILE_EPOCHS" "$TILE_BACKGROUND" test
    ;;
  *) die "unknown dataset $name (shapes, tiles)" ;;
  esac
done
kill $LOADER 2>/dev/null || true
"$PY" - "$OUT/run.json" <<PY
import json, os, sys
load = [l.split() for l in open("$OUT/load.txt") if l.strip()]
one = [float(x[1]) for x in load]
json.dump({"command": "experiments/bench/accuracy/run.sh", "started": "$START", "epochs": $EPOCHS, "tile_epochs": $TILE_EPOCHS, "tile_background": $TILE_BACKGROUND, "threads": $THREADS,
           "shapes_count": $SHAPES_COUNT, "tiles": "$TILES", "lathe": "$("$LATHE" --version)", "cpus": os.cpu_count(),
           "commit_at_start": "$COMMIT", "lathe_binary": "$LATHE",
           "load_at_start": "$LOAD0", "load_1min_samples": len(one),
           "load_1min_mean": sum(one) / len(one) if one else None, "load_1min_max": max(one) if one else None},
          open(sys.argv[1], "w"), indent=1)
PY
"$PY" "$HERE/bench.py" table "$OUT"
