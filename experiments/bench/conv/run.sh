#!/usr/bin/env bash
# run.sh - the convolution library measurement (README.md beside this file): lathe's im2col +
# OpenBLAS kernels against oneDNN (plain and blocked layouts) and the graph's oneDNN path on the
# n-size detector's shapes. Environment: LATHE_BUILD (build), THREADS (nproc), REPEATS (10),
# LATHE_CONV=direct (the graph's path without Winograd). Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
THREADS=${THREADS:-$(nproc)}
REPEATS=${REPEATS:-10}
die() { echo "bench: error: $*" >&2; exit 1; }
[ -f "$BUILD/liblathe.a" ] || die "no $BUILD/liblathe.a (run make)"
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || die "oneDNN headers missing (make deps installs libdnnl-dev)"
CFLAGS=$(make -s -C "$ROOT" --no-print-directory print-CFLAGS)
LDLIBS=$(make -s -C "$ROOT" --no-print-directory print-LDLIBS)
# shellcheck disable=SC2086
cc $CFLAGS -o "$BUILD/bench_conv" "$ROOT/experiments/bench/conv/bench_conv.c" "$BUILD/liblathe.a" -ldnnl $LDLIBS ||
  die "cannot build bench_conv"
OMP_NUM_THREADS=$THREADS "$BUILD/bench_conv" "$THREADS" "$REPEATS"
