#!/usr/bin/env bash
# tests/gpu/bundle_run.sh - on a lent GPU machine: gpu-check from the prebuilt build/gpu-bundle
# (make gpu-bundle here; carry build/gpu-bundle). Finds cuDNN beside CUDA or in PyTorch's wheel.
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
LATHE_BUILD=$B BENCH_BIN=$PWD/$B/bench_train exec tests/gpu/run.sh
