#!/usr/bin/env bash
# tests/gpu/bundle_run.sh - on a lent GPU machine: gpu-check from the prebuilt build/gpu-bundle
# (make gpu-bundle here; carry build/gpu-bundle), then each parity test again under
# compute-sanitizer's memcheck (SANITIZE=0 leaves that out; SANITIZE_TIMEOUT seconds per test,
# 120). Finds cuDNN beside CUDA or in PyTorch's wheel.
set -u
cd "$(dirname "$0")/../.."
B=build/gpu-bundle
[ -d "$B" ] || { echo "no $B: run make gpu-bundle where lathe builds, and carry it"; exit 1; }
LIBS=$PWD/$B/lib
if ! ldconfig -p | grep -q 'libcudnn.so.9' && [ ! -e /usr/local/cuda/lib64/libcudnn.so.9 ]; then
  wheel=$(python3 -c 'import nvidia.cudnn as c; print(c.__path__[0])' 2>/dev/null) && LIBS=$LIBS:$wheel/lib
fi
for d in cublas cuda_runtime; do # CUDA's own libraries from the wheels too, where the toolkit lacks them
  w=$(python3 -c "import nvidia.$d as c; print(c.__path__[0])" 2>/dev/null) && LIBS=$LIBS:$w/lib
done
export LD_LIBRARY_PATH=$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
LATHE_BUILD=$B BENCH_BIN=$PWD/$B/bench_train tests/gpu/run.sh
rc=$?
if [ "${SANITIZE:-1}" = 1 ]; then
  cs=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
  if [ -z "$cs" ]; then echo "SKIP compute-sanitizer: not installed here"; else
    for t in "$B"/tests/gpu/test_*; do
      echo "== compute-sanitizer memcheck $(basename "$t")"
      timeout "${SANITIZE_TIMEOUT:-120}" "$cs" --tool memcheck --error-exitcode 3 --print-limit 20 "$t" >"$B/sanitize.log" 2>&1
      s=$?
      grep -E '^=+ (ERROR|Invalid|Program hit|  at|    at|[0-9]+ errors)|ERROR SUMMARY|FAIL|SKIP' "$B/sanitize.log" | head -40
      case $s in 0) echo "memcheck ok" ;; 124) echo "memcheck: timed out (not a failure)" ;; *) echo "FAIL memcheck $(basename "$t") (rc $s)"; rc=1 ;; esac
    done
  fi
fi
exit $rc
