#!/usr/bin/env bash
# experiments/multimodal/fusion_synth.sh [OUT] - the fusion head on lathe synth photos, end to end:
# 3000 framed parts at 160x120 whose faults show in the image only (scratch, dent, missing hole),
# in the sensors only (bearing wear, overheating, jam) or in both (crack), ingested at 128; the
# line's detector on their boxes (fusion_detector.yaml); the fusion head with its image branch
# started from that detector's backbone (fusion.yaml), and the same head trained on the image alone
# and on the sensors alone, which the ablation in its report compares with. About 20 minutes on 2
# cores; prints the test report's line. OUT defaults to out/fusion (docs/MULTIMODAL.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
LATHE=${LATHE:-${LATHE_BUILD:-build}/lathe}
OUT=${1:-out/fusion}
SPECS=experiments/multimodal
mkdir -p "$OUT"
"$LATHE" synth "$OUT/archive.tar.zst" --force --count 3000 --seed 3 --width 160 --height 120 \
  --defect-size 2.5,3 --contrast 2,2 --defects 1,1 --clutter 0 --part-size 0.4,0.45 \
  --defect-rate 0.5 --sensor-fault-rate 0.3
"$LATHE" ingest "$OUT/archive.tar.zst" -o "$OUT/dataset" --overwrite --size 128 \
  --split 0.7,0.1,0.2 --group-by 'part[0-9]+'
RUNS=(--runs "$OUT/runs" --overwrite)
"$LATHE" train $SPECS/fusion_detector.yaml "data.dataset=$OUT/dataset" "${RUNS[@]}"
DATA=("data.dataset=$OUT/dataset" "train.init=$OUT/runs/fusion_detector/checkpoints/best.safetensors")
for only in image sensors; do
  "$LATHE" train $SPECS/fusion.yaml "${DATA[@]}" fusion.inputs=$only --name fusion-$only "${RUNS[@]}"
done
"$LATHE" train $SPECS/fusion.yaml "${DATA[@]}" "${RUNS[@]}" \
  "eval.baselines.image=$OUT/runs/fusion-image" "eval.baselines.sensors=$OUT/runs/fusion-sensors"
"$LATHE" eval "$OUT/runs/fusion" --split test
