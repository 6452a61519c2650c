#!/usr/bin/env bash
# tools/demo.sh - `make demo`: the inspection workflow on a synthetic line. Synthesize an archive of
# line photos whose defects are small, ingest it twice (as full-resolution tiles for the detector,
# and whole photos letterboxed for the dataset report), verify, describe and analyze it, train a
# defect detector on the tiles and evaluate it on the test split's whole photos (COCO metrics, and
# the image-level verdict per photo: the class its detections score most for, else good), run it on new photos,
# export it to ONNX and to a lathe engine, train an open-vocabulary detector with a class held out
# and run it with a new vocabulary, train image-text heads (line photos, real digit scans)
# and score them zero-shot from class prompts, train an image + sensor fusion head and its
# single-modality baselines, train an anomaly head on good surfaces only and find planted defects with it, write Jupyter notebooks of the detector run and the
# analysis, and print the two headline numbers against the floors the demo promises
# (DEMO_FLOORS=1 makes a miss an error). A whole-photo classifier is not the tool here: at an input
# that trains in minutes the defects are a few pixels (experiments/classify/defects.yaml at 320 px:
# 0.47, see PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${LATHE_BUILD:-build}
LATHE="$BUILD/lathe"
OUT=${DEMO_DIR:-out/demo}
start=$(date +%s)
rm -rf "$OUT"
mkdir -p "$OUT"
# 640x480 photos with defects of 16-90 px (a few percent of the photo: letterboxed to a model's input
# they vanish), 2-4 per defective part, 70% of the parts defective, no sensor-only faults (an image
# model cannot see those: the fusion head is for them)
SYNTH=(--width 640 --height 480 --defect-size 1,1.4 --contrast 1.3 --defects 2,4 --defect-rate 0.7 --sensor-fault-rate 0)
# the views of one physical part stay in one split; ~500 photos train, val's ~90 choose the verdict's
# threshold, and ~310 test photos score it (100 were too few: docs/PERFORMANCE.md, "The demo")
SPLIT=(--split 0.55,0.1,0.35 --group-by 'part[0-9]+')
echo "== lathe synth: 900 line photos with sensors and descriptions -> $OUT/archive.tar.zst"
"$LATHE" synth "$OUT/archive.tar.zst" --count 900 --seed 7 "${SYNTH[@]}" --yolo --voc
echo "== lathe ingest: full-resolution tiles of 128 with 32 px overlap, for the detector"
"$LATHE" ingest "$OUT/archive.tar.zst" -o "$OUT/tiles" --tile 128 --overlap 32 "${SPLIT[@]}" --shard-size 2000
echo "== lathe ingest: whole photos letterboxed to 320, for the dataset report"
"$LATHE" ingest "$OUT/archive.tar.zst" -o "$OUT/dataset" --size 320 "${SPLIT[@]}" --shard-size 200
echo "== lathe verify"
"$LATHE" verify "$OUT/tiles"
"$LATHE" verify "$OUT/dataset"
echo "== lathe info"
"$LATHE" info "$OUT/dataset"
echo "== lathe analyze (statistics, quality findings, leakage between splits)"
"$LATHE" analyze "$OUT/dataset" -o "$OUT/analysis" --notebook
echo "== lathe train: the defect detector on the tiles (experiments/detect/defects.yaml)"
"$LATHE" train experiments/detect/defects.yaml "data.dataset=$OUT/tiles" --runs "$OUT/runs"
echo "== lathe eval: the detector on the test split's whole photos (tile detections merged across seams; each tile also scored mirrored, the two views fused: eval.flip)"
"$LATHE" eval "$OUT/runs/defects_detector" --split test | tee "$OUT/detector.txt"
echo "== lathe notebook: the detector's run and its evaluation as a Jupyter notebook (renders as is, reruns)"
"$LATHE" notebook "$OUT/runs/defects_detector" -o "$OUT/notebooks/defects_detector.ipynb"
echo "== lathe predict: the detector on new photos from the line (cut into the same tiles), boxes drawn"
"$LATHE" synth "$OUT/new" --count 6 --seed 99 "${SYNTH[@]}" >/dev/null
"$LATHE" predict "$OUT/runs/defects_detector" "$OUT/new/images" --render -o "$OUT/predict"
echo "== lathe export: the detector as ONNX (uint8 tiles in, ONNX NMS inside) and as a lathe engine (fp16, for the C API)"
"$LATHE" export "$OUT/runs/defects_detector" -o "$OUT/defects_detector.onnx" --input uint8 --nms onnx
"$LATHE" export "$OUT/runs/defects_detector" -o "$OUT/defects_detector.lathe" --format lathe --precision fp16
echo "== open-vocabulary detection: the detector's tiles, classes scored against their names' text embeddings, crack held out"
"$LATHE" train experiments/multimodal/open_vocab.yaml "data.dataset=$OUT/tiles" train.epochs=5 --runs "$OUT/runs"
"$LATHE" eval "$OUT/runs/open_vocab" --split test | tee "$OUT/open_vocab.txt"
echo "== lathe predict --classes: the open-vocabulary detector on the new photos with a vocabulary it was not trained on"
"$LATHE" predict "$OUT/runs/open_vocab" "$OUT/new/images" --classes "crack,scratch,oil stain" --conf 0.1 --render -o "$OUT/predict-ov"
echo "== the image-text head: framed photos of the line and their descriptions, its encoder the detector's, zero-shot from class prompts (experiments/multimodal/defects_from_detector.yaml)"
"$LATHE" synth "$OUT/text-archive.tar.zst" --count 1200 --seed 5 --width 160 --height 120 --defect-size 2.5,3 \
  --contrast 2,2 --defects 1,1 --defect-rate 0.8 --sensor-fault-rate 0 --clutter 0 --part-size 0.4,0.45 >/dev/null
"$LATHE" ingest "$OUT/text-archive.tar.zst" -o "$OUT/text-dataset" --size 128 --split 0.8,0.1,0.1 --group-by 'part[0-9]+'
"$LATHE" train experiments/multimodal/defects_from_detector.yaml "data.dataset=$OUT/text-dataset" \
  "train.init=$OUT/runs/defects_detector/checkpoints/best.safetensors" --runs "$OUT/runs"
"$LATHE" eval "$OUT/runs/defects_text" --split test | tee "$OUT/text.txt"
echo "== the image-text head on real scans: handwritten digits named only in text (experiments/multimodal/digits.yaml)"
.venv/bin/python experiments/multimodal/make_digit_captions.py "$OUT/digits-src" >/dev/null
"$LATHE" ingest "$OUT/digits-src" -o "$OUT/digits-dataset" --size 16
"$LATHE" train experiments/multimodal/digits.yaml "data.dataset=$OUT/digits-dataset" --runs "$OUT/runs"
"$LATHE" eval "$OUT/runs/digits-text" --split test | tee "$OUT/digits-text.txt"
echo "== the fusion head: photos and sensor windows, each showing only some faults (experiments/multimodal/fusion_parts.yaml)"
.venv/bin/python experiments/multimodal/make_fusion_set.py "$OUT/fusion-src" >/dev/null
"$LATHE" ingest "$OUT/fusion-src" -o "$OUT/fusion" --size 32 --split 0.6,0.2,0.2
for only in image sensors; do # the single-modality baselines the ablation compares with
  "$LATHE" train experiments/multimodal/fusion_parts.yaml "data.dataset=$OUT/fusion" fusion.inputs=$only --name fusion-$only --runs "$OUT/runs"
done
"$LATHE" train experiments/multimodal/fusion_parts.yaml "data.dataset=$OUT/fusion" --runs "$OUT/runs" \
  "eval.baselines.image=$OUT/runs/fusion-image" "eval.baselines.sensors=$OUT/runs/fusion-sensors"
"$LATHE" eval "$OUT/runs/fusion-parts" --split test | tee "$OUT/fusion.txt"
echo "== the anomaly head: brushed-metal surfaces, trained on good ones only, finds planted scratches, stains and dents (experiments/anomaly/surfaces.yaml)"
.venv/bin/python experiments/anomaly/make_surfaces.py "$OUT/surfaces-src" >/dev/null
"$LATHE" ingest "$OUT/surfaces-src" -o "$OUT/surfaces" --size 128 --split source
"$LATHE" train experiments/anomaly/surfaces.yaml "data.dataset=$OUT/surfaces" --runs "$OUT/runs"
"$LATHE" eval "$OUT/runs/surfaces" --split test | tee "$OUT/anomaly.txt"
"$LATHE" predict "$OUT/runs/surfaces" "$OUT/surfaces-src/surface/test/scratch" -o "$OUT/predict-anomaly" >/dev/null
ap50=$(sed -n 's/^mAP [0-9.]* (AP50 \([0-9.]*\)).*/\1/p' "$OUT/detector.txt")
acc=$(sed -n 's/^image-level accuracy \([0-9.]*\) .*/\1/p' "$OUT/detector.txt")
label_acc=$(sed -n 's/^image-level accuracy .*; \([0-9.]*\) naming the label itself.*/\1/p' "$OUT/detector.txt")
echo "demo done in $(( $(date +%s) - start )) s:"
echo "  detector   AP50 $ap50 on the test split's whole photos (floor 0.5): $OUT/runs/defects_detector/eval/report.html"
echo "  image-level accuracy $acc on the test split's photos (floor 0.9; verdict: of the detections at a score threshold chosen on the val photos, the class with the largest sum of scores, else good;"
echo "    right when the part shows that kind of defect; $label_acc naming the one kind each photo is labelled by)"
echo "  dataset report $OUT/analysis/report.html; drawings of new photos in $OUT/predict/render"
echo "  notebooks (Jupyter): the detector's run and evaluation $OUT/notebooks/defects_detector.ipynb, the dataset analysis $OUT/analysis/notebook.ipynb"
echo "  exported detector $OUT/defects_detector.onnx and $OUT/defects_detector.lathe (docs/EXPORT.md)"
novel=$(sed -n 's/^open vocabulary: base classes AP50 \([0-9.]*\), novel classes .* AP50 \([0-9.]*\)$/base AP50 \1, never-trained crack AP50 \2/p' "$OUT/open_vocab.txt")
echo "  open-vocabulary detector $novel: $OUT/runs/open_vocab/eval/report.html; new vocabulary on new photos: $OUT/predict-ov"
zs() { sed -n -e 's/^zero-shot accuracy \([0-9.]*\) on .*(chance \([0-9.]*\)).*; \(held-out classes [0-9.]*\) on .*/\1 (chance \2; \3)/p' \
  -e 's/^zero-shot accuracy \([0-9.]*\) on .*(chance \([0-9.]*\)).*; no held-out classes.*/\1 (chance \2)/p' "$1"; }
echo "  zero-shot defect classes from prompts $(zs "$OUT/text.txt"): $OUT/runs/defects_text/eval/report.html"
echo "  zero-shot digits from prompts $(zs "$OUT/digits-text.txt"): $OUT/runs/digits-text/eval/report.html"
echo "  fusion head $(sed -n 's/^accuracy \([0-9.]*\) on .*(image only \([0-9.]*\), sensors only \([0-9.]*\);.*/accuracy \1 (the same model on the image alone \2, on the sensors alone \3)/p' "$OUT/fusion.txt"): $OUT/runs/fusion-parts/eval/report.html (ablation with the single-modality runs)"
echo "  anomaly head $(sed -n 's/^\(image AUROC [0-9.]*\) on .*; \(pixel AUROC [0-9.]*, PRO [0-9.]*\);.*/\1, \2/p' "$OUT/anomaly.txt") on good-only training: $OUT/runs/surfaces/eval/report.html; maps of new photos: $OUT/predict-anomaly/maps"
# The floors are the demo's target (issue 19), not yet its result on 2 cores in five minutes: say so
# plainly; DEMO_FLOORS=1 makes a miss an error.
if ! awk -v a="$ap50" -v c="$acc" 'BEGIN { exit !(a >= 0.5 && c >= 0.9) }'; then
  echo "  below the target floors (detector AP50 0.5, image-level accuracy 0.9): twenty-four CPU epochs find most defects but judge about"
  echo "  one part in nine wrong: false alarms on good parts, missing holes and cracks not found (docs/PERFORMANCE.md, \"The demo\")"
  [ "${DEMO_FLOORS:-0}" = 1 ] && exit 1
fi
exit 0
