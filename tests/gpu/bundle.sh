#!/usr/bin/env bash
# tests/gpu/bundle.sh - `make gpu-bundle`: the GPU tests and the training benchmark, built here for a
# GPU machine that has CUDA (and its cuDNN, or PyTorch's) but none of lathe's libraries, with the
# shared libraries they need beside them. oneDNN is left out (DNNL=0: the CPU side convolves with
# im2col + OpenBLAS) to stay under the 64 MiB a lent machine takes along, and so is MPI (MPI=0: one
# process; its libraries would not fit, and a lent machine has one GPU). Writes build/gpu-bundle/:
# tests/gpu/test_*, bench_train and lib/; run it there with tests/gpu/bundle_run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=build/gpu-bundle
SRC=build/nodnnl
BLAS_LIB=$(make -s print-BLAS_LIB)
rm -rf "$OUT" && mkdir -p "$OUT/tests/gpu" "$OUT/lib"
make -s -j2 DNNL=0 CUDA=1 MPI=0 BUILD_DIR="$SRC" GPU_BLAS="-L$BLAS_LIB -lopenblas" BENCH_TRAIN="$OUT/bench_train" \
  bench-train $(for t in tests/gpu/test_*.c; do printf '%s ' "$SRC/tests/gpu/$(basename "$t" .c)"; done)
cp "$SRC"/tests/gpu/test_* "$OUT/tests/gpu/" && rm -f "$OUT"/tests/gpu/*.d "$OUT"/*.d
# every shared library the binaries load from outside the C runtime and CUDA's folders
for bin in "$OUT"/bench_train "$OUT"/tests/gpu/test_*; do
  ldd "$bin" | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -Ev '/(libc|libm|libdl|librt|libpthread|libstdc\+\+|libgcc_s|libgomp|ld-linux[^/]*)\.so|/cuda[^/]*/' |
  while read -r lib; do cp -L "$lib" "$OUT/lib/"; done
du -sh "$OUT" "$OUT/lib"
ls "$OUT/lib"
