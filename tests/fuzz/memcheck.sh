#!/usr/bin/env bash
# tests/fuzz/memcheck.sh - `make fuzz-memcheck`: replays each fuzz target's inputs under valgrind's
# memcheck, on the plain (uninstrumented, -O2) build: every file of its seed corpus
# (tests/fuzz/corpus/<target>/) and of the corpus `make fuzz` grew (FUZZ_WORK/corpus/<target>/,
# when there). Memcheck tracks which bytes were ever written, through code no sanitizer
# instrumented (libjpeg-turbo, libpng, zlib, libhdf5, libarchive), so it reports what ASan and
# UBSan cannot: a branch on a value a library left unset. Leaks are LeakSanitizer's business in
# `make fuzz` and are not checked here. Prints inputs and errors per target and one summary line;
# exits 1 when any target had a memcheck error. Arguments name targets; none means all.
# Environment: FUZZ_REPLAY (build/tests/replay: the targets linked with tests/fuzz/replay.c),
# FUZZ_WORK (build/fuzz/work), FUZZ_MEMCHECK_LIMIT (inputs replayed per corpus folder, 2000: memcheck
# runs a target 20-50 times slower than natively), FUZZ_LOGS (where each target's valgrind log is
# kept, FUZZ_REPLAY/logs).
set -u
cd "$(dirname "$0")/../.."
REPLAY=${FUZZ_REPLAY:-build/tests/replay}
WORK=${FUZZ_WORK:-build/fuzz/work}
LIMIT=${FUZZ_MEMCHECK_LIMIT:-2000}
LOGS=${FUZZ_LOGS:-$REPLAY/logs}
command -v valgrind >/dev/null || { echo "fuzz-memcheck: valgrind is not installed (make deps installs it)" >&2; exit 2; }
mkdir -p "$LOGS"
tmp_root=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp_root=/dev/shm
export TMPDIR=$(mktemp -d "$tmp_root/lathe-memcheck.XXXXXX")
trap 'rm -rf "$TMPDIR"' EXIT
export OMP_NUM_THREADS=1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in tests/fuzz/fuzz_*.c; do t=${src##*/fuzz_}; targets+=("${t%.c}"); done
fi

# Copies at most LIMIT files of folder $1 (in name order) into folder $2, so a large grown corpus
# is sampled the same way on every run.
sample() {
  [ -d "$1" ] || return 0
  find "$1" -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | head -n "$LIMIT" |
    while IFS= read -r name; do cp -- "$1/$name" "$2/$name"; done
}

failed=0
printf '%-16s %8s %8s  %s\n' target inputs errors result
for t in "${targets[@]}"; do
  bin=$REPLAY/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz-memcheck: no $bin (make fuzz-memcheck builds it)" >&2; exit 2; }
  inputs=$TMPDIR/inputs-$t
  mkdir -p "$inputs"
  sample "tests/fuzz/corpus/$t" "$inputs"
  sample "$WORK/corpus/$t" "$inputs"
  log=$LOGS/$t.log
  valgrind --tool=memcheck --error-exitcode=99 --leak-check=no --track-origins=yes \
    --suppressions=tests/fuzz/memcheck.supp --log-file="$log" "$bin" "$inputs" >/dev/null 2>"$log.stderr"
  rc=$?
  n=$(find "$inputs" -type f | wc -l)
  errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
  case $rc in
    0) result=ok ;;
    99) result="memcheck errors: $log"; failed=1 ;;
    *) result="exit $rc: $log.stderr"; failed=1 ;;
  esac
  printf '%-16s %8s %8s  %s\n' "$t" "$n" "${errors:-?}" "$result"
  rm -rf "$inputs"
done
[ $failed -eq 0 ] && echo "fuzz-memcheck: ${#targets[@]} targets, no memcheck error" ||
  echo "fuzz-memcheck: memcheck errors or failures above"
exit $failed
