#!/usr/bin/env bash
# run.sh - the training benchmark (README.md beside this file): lathe against PyTorch eager on CPU,
# same architecture (the same spec file), batch, precision (fp32), optimizer (SGD with momentum)
# and thread count, in one run. Prints, per model, the median images/s of each, the median of the
# per-round ratios with their range, and the peak memory of each.
# Environment: LATHE_BUILD (build), THREADS (nproc), BATCH (32), STEPS (10), ROUNDS (3: lathe and
# PyTorch take turns), MODELS (the specs here), TORCH_PYTHON (/usr/bin/python3 with Debian's
# python3-torch). Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/train
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
THREADS=${THREADS:-$(nproc)}
BATCH=${BATCH:-32}
STEPS=${STEPS:-10}
ROUNDS=${ROUNDS:-3}
MODELS=${MODELS:-"$HERE/resnet_cls.yaml $HERE/detector_backbone.yaml $HERE/detector_n.yaml"}
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
die() { echo "bench: error: $*" >&2; exit 1; }
"$TORCH_PYTHON" -c 'import torch' 2>/dev/null ||
  die "$TORCH_PYTHON lacks torch: apt-get install python3-torch (benchmark only, not CI)"
BIN=$BUILD/bench_train
make -s -C "$ROOT" --no-print-directory bench-train BENCH_TRAIN="$BIN" >/dev/null || die "cannot build bench_train"
printf 'training benchmark: batch %d, %d threads, fp32, SGD momentum, %d timed steps after 2 warm-up, %d rounds\n' "$BATCH" "$THREADS" "$STEPS" "$ROUNDS"
printf '  %-20s %12s %12s %12s %12s %12s %14s\n' model "lathe img/s" "torch img/s" "lathe/torch" "ratio range" "lathe MiB" "torch MiB"
for spec in $MODELS; do
  "$BIN" "$spec" --model-json >"$BUILD/bench_model.json" || die "cannot resolve $spec"
  # lathe and PyTorch take turns, so a slow spell of this shared machine hits both alike
  rounds=()
  for ((r = 0; r < ROUNDS; r++)); do
    l=$(OMP_NUM_THREADS=$THREADS "$BIN" "$spec" "$BATCH" "$STEPS" "$THREADS") || die "bench_train failed on $spec"
    t=$(OMP_NUM_THREADS=$THREADS "$TORCH_PYTHON" "$HERE/peer_torch.py" "$BUILD/bench_model.json" "$BATCH" "$STEPS" "$THREADS") ||
      die "peer failed on $spec"
    rounds+=("$l" "$t")
  done
  python3 - "$(basename "$spec" .yaml)" "${rounds[@]}" <<'PY'
import json, statistics, sys
name, runs = sys.argv[1], [json.loads(a) for a in sys.argv[2:]]
lathe, torch = runs[0::2], runs[1::2]
ratios = [l['images_per_s'] / t['images_per_s'] for l, t in zip(lathe, torch)]
med = lambda rows, key: statistics.median(r[key] for r in rows)
print(f"  {name:20s} {med(lathe, 'images_per_s'):12.1f} {med(torch, 'images_per_s'):12.1f} {statistics.median(ratios):12.2f} "
      f"{min(ratios):5.2f}-{max(ratios):<6.2f} {max(r['peak_rss_mib'] for r in lathe):12.0f} {max(r['peak_rss_mib'] for r in torch):14.0f}"
      f"   (params {lathe[0]['params']} / {torch[0]['params']}, torch {torch[0]['torch']})")
PY
done
