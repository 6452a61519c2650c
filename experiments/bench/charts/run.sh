#!/usr/bin/env bash
# run.sh - PNG encoding of report pictures (README.md beside this file): the four chart kinds of
# libcore/eval/plot.c and drawn photos, encoded by cairo's own writer (the peer) and by lathe's
# encoders, in one run. Environment: LATHE_BUILD (build), REPEATS (20), PHOTOS (image files; default:
# three line photos `lathe synth` draws at the demo's settings). Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
REPEATS=${REPEATS:-20}
die() { echo "bench: error: $*" >&2; exit 1; }
[ -f "$BUILD/liblathe.a" ] && [ -x "$BUILD/lathe" ] || die "no $BUILD/liblathe.a or $BUILD/lathe (run make)"
CFLAGS=$(make -s -C "$ROOT" --no-print-directory print-CFLAGS)
LDLIBS=$(make -s -C "$ROOT" --no-print-directory print-LDLIBS)
# shellcheck disable=SC2086
cc $CFLAGS -o "$BUILD/bench_charts" "$ROOT/experiments/bench/charts/bench_charts.c" "$BUILD/liblathe.a" \
  "$BUILD/libkernels.a" $LDLIBS || die "cannot build bench_charts"
if [ -z "${PHOTOS:-}" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$BUILD/lathe" synth "$tmp/line" --count 3 --seed 7 --width 640 --height 480 --defect-size 1,1.4 --contrast 1.3 \
    --defects 2,4 >/dev/null ||
    die "lathe synth failed"
  PHOTOS=$(find "$tmp/line" -type f \( -name '*.png' -o -name '*.jpg' \) | sort | head -3 | tr '\n' ' ')
fi
# shellcheck disable=SC2086
"$BUILD/bench_charts" "$REPEATS" $PHOTOS
