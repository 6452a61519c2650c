#!/usr/bin/env bash
# tests/gpu/run.sh - `make gpu-check`: every GPU parity test (each also times its kernel against the
# CPU twin). Each prints SKIP and passes where no GPU or no CUDA build exists.
set -u
cd "$(dirname "$0")/../.."
BUILD=${LATHE_BUILD:-build}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fail=0
for t in "$BUILD"/tests/gpu/test_*; do
  [ -x "$t" ] || continue
  echo "== $(basename "$t")"
  timeout 240 "$t" || { echo "FAIL $(basename "$t")"; fail=1; }
done
[ "$fail" = 0 ] && echo "gpu-check: ok" || echo "gpu-check: FAILED"
exit "$fail"
