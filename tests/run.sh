#!/usr/bin/env bash
# tests/run.sh - `make test`: the C unit tests, the integration scripts and the interop tests
# (pytest with h5py/hdf5plugin/Pillow as oracles). Prints one summary line; exits 1 on any failure.
set -u
cd "$(dirname "$0")/.."
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$PWD/$BUILD ;; esac # make BUILD_DIR=/abs/path test works too
export LATHE="$BUILD/lathe" LATHE_BUILD="$BUILD" HDF5_PLUGIN_PATH="$BUILD/plugins"
export TMPDIR=$(mktemp -d /tmp/lathe-tests.XXXXXX)
# sanitizer builds: third-party allocations kept for the process's life (tests/lsan.supp)
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
if [ "${LATHE_SANITIZE:-0}" = thread ]; then
  # ThreadSanitizer (make SANITIZE=thread test): archer tells it about LLVM OpenMP's barriers and
  # locks; a report fails the command that made it (exit 66); OpenBLAS's own libgomp threads are
  # invisible to TSan, so BLAS runs on the calling thread
  llvm=$(dirname "$(dirname "$(readlink -f "$(command -v clang)")")")
  export OMP_TOOL_LIBRARIES="$llvm/lib/libarcher.so" OPENBLAS_NUM_THREADS=1
  export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1 external_symbolizer_path=$llvm/bin/llvm-symbolizer${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
fi
trap 'rm -rf "$TMPDIR"' EXIT
pass=0 fail=0 failed=()
run() { # name, command...
  local name=$1; shift
  local log="$TMPDIR/$(echo "$name" | tr '/ ' '__').log"
  if "$@" >"$log" 2>&1; then pass=$((pass + 1)); echo "PASS $name"
  else fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name"; tail -n 40 "$log" | sed 's/^/    /'; fi
}
for t in "$BUILD"/tests/test_*; do [ -x "$t" ] && run "unit/$(basename "$t")" "$t"; done
# GPU parity tests pass with a printed SKIP where no GPU exists; make gpu-check runs them on one
for t in "$BUILD"/tests/gpu/test_*; do [ -x "$t" ] && run "gpu/$(basename "$t")" "$t" && grep -h "^SKIP" "$TMPDIR/gpu_$(basename "$t").log" 2>/dev/null | sed 's/^/    /'; done
for t in tests/integration/test_*.sh; do [ -f "$t" ] && run "integration/$(basename "$t")" bash "$t"; done
if [ -x .venv/bin/python ]; then
  run "interop/pytest" .venv/bin/python -m pytest -q tests/interop
else
  fail=$((fail + 1)); failed+=("interop (no .venv: run make deps)"); echo "FAIL interop: .venv missing, run make deps"
fi
echo "lathe tests: $pass passed, $fail failed${failed:+ (${failed[*]})}"
[ "$fail" = 0 ]
