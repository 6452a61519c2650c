#!/usr/bin/env bash
# run.sh - the training benchmark (README.md beside this file): lathe against PyTorch eager on CPU,
# same architecture (the same spec file), batch, precision (fp32), optimizer (SGD with momentum)
# and thread count, in one run. Prints images/s, peak memory and the ratio per model.
# Environment: LATHE_BUILD (build), THREADS (nproc), BATCH (32), STEPS (10), MODELS (the two specs
# here), TORCH_PYTHON (/usr/bin/python3 with Debian's python3-torch). Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/train
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
THREADS=${THREADS:-$(nproc)}
BATCH=${BATCH:-32}
STEPS=${STEPS:-10}
MODELS=${MODELS:-"$HERE/resnet_cls.yaml $HERE/detector_backbone.yaml $HERE/detector_n.yaml"}
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
die() { echo "bench: error: $*" >&2; exit 1; }
"$TORCH_PYTHON" -c 'import torch' 2>/dev/null ||
  die "$TORCH_PYTHON lacks torch: apt-get install python3-torch (benchmark only, not CI)"
BIN=$BUILD/bench_train
make -s -C "$ROOT" --no-print-directory bench-train BENCH_TRAIN="$BIN" >/dev/null || die "cannot build bench_train"
printf 'training benchmark: batch %d, %d threads, fp32, SGD momentum, %d timed steps after 2 warm-up\n' "$BATCH" "$THREADS" "$STEPS"
printf '  %-20s %12s %12s %12s %12s %14s\n' model "lathe img/s" "torch img/s" "lathe/torch" "lathe MiB" "torch MiB"
for spec in $MODELS; do
  l=$(OMP_NUM_THREADS=$THREADS "$BIN" "$spec" "$BATCH" "$STEPS" "$THREADS") || die "bench_train failed on $spec"
  "$BIN" "$spec" --model-json >"$BUILD/bench_model.json" || die "cannot resolve $spec"
  t=$(OMP_NUM_THREADS=$THREADS "$TORCH_PYTHON" "$HERE/peer_torch.py" "$BUILD/bench_model.json" "$BATCH" "$STEPS" "$THREADS") ||
    die "peer failed on $spec"
  python3 - "$(basename "$spec" .yaml)" "$l" "$t" <<'PY'
import json, sys
name, l, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"  {name:20s} {l['images_per_s']:12.1f} {t['images_per_s']:12.1f} {l['images_per_s'] / t['images_per_s']:12.2f} "
      f"{l['peak_rss_mib']:12.0f} {t['peak_rss_mib']:14.0f}   (params {l['params']} / {t['params']}, torch {t['torch']})")
PY
done
