#!/usr/bin/env bash
# tests/run.sh - `make test`: the C unit tests, the integration scripts and the interop tests
# (pytest with h5py/hdf5plugin/Pillow as oracles). Prints one summary line; exits 1 on any failure.
# The line is `lathe tests: P passed, F failed`, then `, S skipped (...)` when anything skipped: a
# test program or script that exits 0 but printed a `SKIP ...` line (no GPU, no oneDNN, no model:
# part of what it checks did not run) counts as skipped, not passed; pytest runs as one entry, and
# the tests it skipped add to S one each (its reasons are shown, as are the programs' SKIP lines).
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
pass=0 fail=0 skip=0 failed=() skipped=()
log_of() { echo "$TMPDIR/$(echo "$1" | tr '/ ' '__').log"; }
run() { # name, command...
  local name=$1; shift
  local log; log=$(log_of "$name")
  if ! "$@" >"$log" 2>&1; then
    fail=$((fail + 1)); failed+=("$name"); echo "FAIL $name"; tail -n 40 "$log" | sed 's/^/    /'
  elif grep -q "^SKIP " "$log"; then
    skip=$((skip + 1)); skipped+=("$name"); echo "SKIP $name"; grep "^SKIP " "$log" | sed 's/^/    /'
  else pass=$((pass + 1)); echo "PASS $name"; fi
}
for t in "$BUILD"/tests/test_*; do [ -x "$t" ] && run "unit/$(basename "$t")" "$t"; done
# GPU parity tests print SKIP and exit 0 where no GPU exists; make gpu-check runs them on one
for t in "$BUILD"/tests/gpu/test_*; do [ -x "$t" ] && run "gpu/$(basename "$t")" "$t"; done
for t in tests/integration/test_*.sh; do [ -f "$t" ] && run "integration/$(basename "$t")" bash "$t"; done
if [ -x .venv/bin/python ]; then
  run "interop/pytest" .venv/bin/python -m pytest -q -rs tests/interop
  log=$(log_of "interop/pytest") # pytest's last line: "... N passed, M skipped ... in T s"
  n=$(tail -n 1 "$log" | grep -oE '[0-9]+ skipped' | cut -d' ' -f1)
  if [ -n "$n" ]; then
    skip=$((skip + n)); skipped+=("interop/pytest:$n"); grep "^SKIPPED" "$log" | sed 's/^/    /'
  fi
else
  fail=$((fail + 1)); failed+=("interop (no .venv: run make deps)"); echo "FAIL interop: .venv missing, run make deps"
fi
summary="lathe tests: $pass passed, $fail failed${failed:+ (${failed[*]})}"
[ "$skip" -gt 0 ] && summary+=", $skip skipped (${skipped[*]})"
echo "$summary"
[ "$fail" = 0 ]
