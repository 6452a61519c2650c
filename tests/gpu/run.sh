#!/usr/bin/env bash
# tests/gpu/run.sh - `make gpu-check`: every GPU parity test (the kernel tests also time their
# kernel against the CPU twin), then the training benchmark on the GPU (images/s, CPU vs GPU,
# experiments/bench/train/gpu.sh). Each prints SKIP and passes where no GPU or no CUDA build exists.
# TEST_TIMEOUT: seconds per parity test (240).
set -u
cd "$(dirname "$0")/../.."
BUILD=${LATHE_BUILD:-build}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fail=0
for src in tests/gpu/test_*.c; do
  name=$(basename "$src" .c)
  t=$BUILD/tests/gpu/$name
  echo "== $name"
  if [ ! -x "$t" ]; then echo "SKIP $name: not built here"; continue; fi
  timeout "${TEST_TIMEOUT:-240}" "$t" || { echo "FAIL $name"; fail=1; }
done
echo "== training benchmark"
LATHE_BUILD=$BUILD timeout 300 experiments/bench/train/gpu.sh || { echo "FAIL training benchmark"; fail=1; }
[ "$fail" = 0 ] && echo "gpu-check: ok" || echo "gpu-check: FAILED"
exit "$fail"
