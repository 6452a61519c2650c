#!/usr/bin/env bash
# ablate.sh - variants of one side of the accuracy benchmark on a dataset run.sh has exported
# (OUT/<DS>/export), each trained, predicted and scored as run.sh does, into OUT/ablation/<DS>/NAME;
# prints mAP, AP50 and per-class AP of each. Used to find why lathe trails Ultralytics (docs/PERFORMANCE.md).
# usage: experiments/bench/accuracy/ablate.sh VARIANT...
#   lathe-noema        lathe, train.ema=0 (Ultralytics' EMA, 0.9999 x (1 - exp(-updates/2000)), is ~0.17 after
#                      375 updates: almost the raw weights; lathe's 0.99 averages the last ~100 steps)
#   lathe-ulsched      lathe with Ultralytics' optimizer schedule: AdamW lr 0.002*5/(4+3), 3 warm-up epochs,
#                      linear decay to 1 %, no EMA
#   lathe-topk13       lathe, train.assign.topk=13
#   ultra-latheassign  Ultralytics with lathe's assigner (alpha 1, no 16 px floor of small boxes' sides)
# Environment as run.sh: OUT, EPOCHS, THREADS, LATHE_BUILD, VENV; DS (shapes).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/accuracy
cd "$ROOT"
abs() { case $1 in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
LATHE=$(abs "${LATHE_BUILD:-build}")/lathe
EPOCHS=${EPOCHS:-15}
THREADS=${THREADS:-2}
OUT=$(abs "${OUT:-out/bench/accuracy}")
DS=${DS:-shapes}
PY=$(abs "${VENV:-.venv-ultralytics}")/bin/python
SPEC=experiments/ci/detect.yaml
EXPORT=$OUT/$DS/export
GT=$EXPORT/gt_val.json
die() { echo "ablate: error: $*" >&2; exit 1; }
[ -f "$GT" ] || die "no $GT: run run.sh first"
export YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false YOLO_CONFIG_DIR=$OUT/yolo-config
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
dataset=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["dataset"])' "$EXPORT/export.json")
size=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_size"][0])' "$EXPORT/export.json")
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

lathe_variant() {
  local dir=$1; shift
  local t0 t1
  t0=$(now)
  "$LATHE" train "$SPEC" "data.dataset=$dataset" "model.input=[3,$size,$size]" "train.epochs=$EPOCHS" "$@" \
    --runs "$dir" --name run --overwrite --threads "$THREADS" 2>"$dir/train.log" || die "lathe train failed ($dir/train.log)"
  t1=$(now)
  "$LATHE" predict "$dir/run" "$EXPORT/images/val" -o "$dir/predict" --conf 0.001 --iou 0.7 --max-det 100 \
    --threads "$THREADS" 2>"$dir/predict.log" || die "lathe predict failed"
  "$PY" "$HERE/bench.py" lathe-dets "$dir/predict" "$dir/dets.json" >/dev/null
  "$LATHE" eval --detections "$dir/dets.json" --gt "$GT" -o "$dir/eval" >/dev/null 2>&1 || die "lathe eval failed"
  "$PY" "$HERE/bench.py" score "$GT" "$dir/dets.json" "$dir/eval/report.json" "$dir/score.json" >/dev/null
  "$PY" "$HERE/bench.py" result lathe "$dir" "$(secs "$t0" "$t1")"
}

ultra_variant() {
  local dir=$1; shift
  "$PY" "$HERE/yolo_side.py" "$EXPORT" "$dir" --imgsz "$size" --epochs "$EPOCHS" --batch 16 --close-mosaic 3 \
    --threads "$THREADS" "$@" >"$dir/train.log" 2>&1 || die "Ultralytics failed ($dir/train.log)"
  "$LATHE" eval --detections "$dir/dets.json" --gt "$GT" -o "$dir/eval" >/dev/null 2>&1 || die "lathe eval failed"
  "$PY" "$HERE/bench.py" score "$GT" "$dir/dets.json" "$dir/eval/report.json" "$dir/score.json" >/dev/null
  "$PY" "$HERE/bench.py" result ultralytics "$dir" \
    "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["train_seconds"])' "$dir/summary.json")"
}

for v in "$@"; do
  dir=$OUT/ablation/$DS/$v
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "ablate: $v ($(cut -d' ' -f1-3 /proc/loadavg) load)" >&2
  case $v in
  lathe-noema) lathe_variant "$dir" train.ema=0 ;;
  lathe-ulsched) lathe_variant "$dir" train.lr=0.001429 train.warmup_epochs=3 train.schedule=linear \
    train.final_lr=0.00001429 train.ema=0 ;;
  lathe-topk13) lathe_variant "$dir" train.assign.topk=13 ;;
  ultra-latheassign) ultra_variant "$dir" --assigner lathe ;;
  *) die "unknown variant $v" ;;
  esac
  "$PY" - "$dir" "$v" <<'PY'
import json, sys
d, v = sys.argv[1], sys.argv[2]
r = json.load(open(d + "/result.json"))
cls = json.load(open(d + "/eval/report.json"))["classes"]
print(f"{v:<20} mAP {r['mAP']:.4f} AP50 {r['AP50']:.4f} AP75 {r['AP75']:.4f} train {r['train_seconds']:.0f} s  "
      + "  ".join(f"{c['name']} {c['AP']:.3f}" for c in cls), flush=True)
PY
done
