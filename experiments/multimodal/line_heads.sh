#!/usr/bin/env bash
# experiments/multimodal/line_heads.sh fusion|text [OUT] - a multimodal head on lathe synth photos
# whose image branch starts from the line's detector, end to end: 3000 framed parts at 160x120,
# ingested at 128; line_detector.yaml on their boxes; then
#   fusion  faults in the image only (scratch, dent, missing hole), in the sensors only (bearing
#           wear, overheating, jam) or in both (crack); the fusion head (fusion.yaml) and the same
#           head trained on the image alone and on the sensors alone, which its report's ablation
#           compares with. About 20 minutes on 2 cores.
#   text    80% of the parts with one image defect and a description of it; the image-text head
#           (defects_backbone.yaml) with crack held out: the detector is trained without crack
#           boxes, the head without crack photos, and crack is named only in the prompts at
#           evaluation. About 15 minutes.
# Prints the test report's line. OUT defaults to out/fusion or out/text (docs/MULTIMODAL.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
LATHE=${LATHE:-${LATHE_BUILD:-build}/lathe}
case "${1:-}" in
  fusion) FAULTS=(--seed 3 --defect-rate 0.5 --sensor-fault-rate 0.3) HOLDOUT=() HEAD=fusion ;;
  text) FAULTS=(--seed 5 --defect-rate 0.8 --sensor-fault-rate 0) HOLDOUT=('data.holdout_classes=[crack]') HEAD=defects_backbone ;;
  *) echo "usage: $0 fusion|text [OUT]" >&2; exit 2 ;;
esac
OUT=${2:-out/$1}
SPECS=experiments/multimodal
mkdir -p "$OUT"
"$LATHE" synth "$OUT/archive.tar.zst" --force --count 3000 --width 160 --height 120 "${FAULTS[@]}" \
  --defect-size 2.5,3 --contrast 2,2 --defects 1,1 --clutter 0 --part-size 0.4,0.45
"$LATHE" ingest "$OUT/archive.tar.zst" -o "$OUT/dataset" --overwrite --size 128 \
  --split 0.7,0.1,0.2 --group-by 'part[0-9]+'
RUNS=(--runs "$OUT/runs" --overwrite)
"$LATHE" train $SPECS/line_detector.yaml "data.dataset=$OUT/dataset" "${HOLDOUT[@]}" "${RUNS[@]}"
DATA=("data.dataset=$OUT/dataset" "train.init=$OUT/runs/line_detector/checkpoints/best.safetensors")
if [ "$1" = fusion ]; then
  for only in image sensors; do
    "$LATHE" train $SPECS/fusion.yaml "${DATA[@]}" fusion.inputs=$only --name fusion-$only "${RUNS[@]}"
  done
  DATA+=("eval.baselines.image=$OUT/runs/fusion-image" "eval.baselines.sensors=$OUT/runs/fusion-sensors")
fi
"$LATHE" train $SPECS/$HEAD.yaml "${DATA[@]}" "${RUNS[@]}"
"$LATHE" eval "$OUT/runs/$HEAD" --split test
