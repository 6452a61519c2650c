#!/usr/bin/env bash
# tests/fuzz/run.sh - `make fuzz`: runs each libFuzzer target of tests/fuzz/ for FUZZ_SECONDS on a
# working copy of its seed corpus (tests/fuzz/corpus/<target>/ is copied in, never written), prints
# executions and findings per target and one summary line; exits 1 when any target crashed, leaked,
# hung or tripped a sanitizer. Arguments name targets (coco, yolo, ...); none means all.
# Environment: FUZZ_BUILD (build/fuzz), FUZZ_SECONDS (60), FUZZ_WORK (FUZZ_BUILD/work: the grown
# corpora, kept between runs, and the crash artifacts), FUZZ_FLAGS (more libFuzzer flags), FUZZ_TMP
# (where harnesses write their inputs as files; /dev/shm when writable, else /tmp).
set -u
cd "$(dirname "$0")/../.."
BUILD=${FUZZ_BUILD:-build/fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
WORK=${FUZZ_WORK:-$BUILD/work}
mkdir -p "$WORK/corpus" "$WORK/artifacts"
# Harnesses write their files under TMPDIR only: on a tmpfs (/dev/shm) where there is one, as on a
# disk the file system's own work is most of a file-reading target's time (safetensors 1,960 ->
# 15,012 executions a second, text_config 900 -> 8,486). FUZZ_TMP names another folder.
tmp_root=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp_root=/dev/shm
export TMPDIR=$(mktemp -d "${FUZZ_TMP:-$tmp_root}/lathe-fuzz.XXXXXX")
trap 'rm -rf "$TMPDIR"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export OMP_NUM_THREADS=1

# A crash or hang inside HDF5 itself (frames of libhdf5 above the first lathe frame) is a finding in
# Debian's libhdf5, not in lathe: it is reported as third-party (docs/RELIABILITY.md lists those
# found) and does not fail the run. The shard target runs in fork mode so such a crash does not end
# its run; every input it saves is replayed and classified. A leak is HDF5's only when every leaked
# block was allocated inside libhdf5 (its frames above the first lathe frame): libhdf5 1.10 loses
# memory on some corrupt-file error paths (H5Fopen, H5Dopen2, H5Aread of a broken vlen string).
# lathe cannot hide a leak of its own there: fuzz_shard aborts when any HDF5 id is left open after
# the dataset is closed, and a block lathe's own code allocates (the zstd filter's, say) has a lathe
# frame first. Any other leak is lathe's.
THIRD_PARTY=${FUZZ_THIRD_PARTY:-libhdf5}

# Prints "lathe" or "third-party" for the report in log (the first sanitizer or libFuzzer report).
classify() {
  awk -v lib="$THIRD_PARTY" '
    function ours(line) { return line ~ /(libcore\/[a-z]+|datasets|tests\/fuzz)\/[a-z0-9_]+\.c:[0-9]/ }
    /ERROR: LeakSanitizer/ { leak = 1; next }
    leak && /leak of .* allocated from:/ { blocks++; decided = 0; next }
    leak && /^ *#[0-9]+ / && !decided {
      if (ours($0)) { print "lathe"; done = 1; exit }
      if ($0 ~ lib) { decided = 1; third++ }
      next
    }
    leak { next }
    /ERROR|runtime error|deadly signal|timeout after/ { seen = 1 }
    seen && /^ *#[0-9]+ / {
      if (ours($0)) { print (third ? "third-party" : "lathe"); done = 1; exit }
      if ($0 ~ lib) third = 1
    }
    END {
      if (done) exit
      if (leak) print (blocks && third == blocks ? "third-party" : "lathe")
      else if (!seen) print "lathe"
    }' "$1" | head -1
}

# -max_len per target: a little above the largest realistic input the parser sees in a test.
max_len() {
  case $1 in
    jpeg|png|engine) echo 16384 ;;
    shard) echo 65536 ;;
    notebook) echo 24576 ;;
    archive) echo 8192 ;;
    safetensors|eval|coco|voc|vocab) echo 4096 ;;
    *) echo 2048 ;;
  esac
}

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
total=0 failed=()
printf '%-12s %12s %8s %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  bin=$BUILD/tests/fuzz/fuzz_$t
  if [ ! -x "$bin" ]; then failed+=("$t"); echo "$t: $bin is not built (make fuzz-build)"; continue; fi
  corpus=$WORK/corpus/$t
  mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null
  log=$WORK/$t.log
  # libhdf5 has no frame pointers: the full unwinder (DWARF at every allocation) lets tests/lsan.supp
  # name its leaks; H5D_open sits deep under HDF5's allocations, so 30 frames. (libfyaml's leak is
  # kept out of LeakSanitizer's sight by libcore/base/yaml_scalar.h instead, so the YAML targets run
  # with the fast unwinder; the corpus's regress-fyaml-quote-leak.yaml, run first by every round of
  # config, fails the round if that stops holding.)
  asan=$ASAN_OPTIONS
  case $t in
    shard) asan="$asan:fast_unwind_on_malloc=0" ;;
    # an engine may declare a model of any size: one allocation above 256 MiB fails (NULL), so a large
    # model meets lathe's out-of-memory path, as on a machine short of memory, not libFuzzer's RSS cap
    engine) asan="$asan:max_allocation_size_mb=256" ;;
  esac
  fork=()
  [ "$t" = shard ] && fork=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1)
  dict=() # YAML's indicators, for the targets whose inputs libfyaml and lathe's YAML checks read
  case $t in config|override|yolo) dict=(-dict=tests/fuzz/yaml.dict) ;; esac
  art=$WORK/artifacts/$t.$(date +%Y%m%d-%H%M%S) # this run's saved inputs
  mkdir -p "$art"
  ASAN_OPTIONS=$asan "$bin" -max_total_time="$SECONDS_EACH" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$art/" "${fork[@]}" "${dict[@]}" ${FUZZ_FLAGS:-} "$corpus" >"$log" 2>&1
  rc=$?
  if [ ${#fork[@]} = 0 ]; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  else # fork mode: "#EXECS: cov: ... exec/s: R ..." lines from the parent
    execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -1)
    rate=$(sed -n 's/^#[0-9]*: cov:.* exec\/s: \([0-9]*\).*/\1/p' "$log" | tail -1)
  fi
  execs=${execs:-0}
  total=$((total + execs))
  result=ok third=0 ours=()
  for a in "$art"/*; do
    [ -f "$a" ] || continue
    ASAN_OPTIONS=$asan "$bin" -timeout=10 -rss_limit_mb=2048 "$a" >"$a.log" 2>&1
    if [ "$(classify "$a.log")" = third-party ]; then third=$((third + 1)); else ours+=("$a"); fi
  done
  [ ${#fork[@]} = 0 ] && [ $rc != 0 ] && [ "$(ls "$art" | wc -l)" = 0 ] && ours+=("(no input saved)")
  if [ ${#ours[@]} != 0 ]; then
    failed+=("$t")
    result="FAILED (exit $rc): $(grep -h -m1 -E '^==[0-9]+==ERROR|runtime error|ERROR: libFuzzer' "${ours[0]}.log" "$log" 2>/dev/null | head -1 | cut -c1-150)"
    result="$result; input: ${ours[0]}; log: $log"
  fi
  rmdir "$art" 2>/dev/null
  [ $third != 0 ] && result="$result; $third input(s) crash or hang inside $THIRD_PARTY (third-party, kept in $art)"
  printf '%-12s %12s %8s %s\n' "$t" "$execs" "${rate:-0}" "$result"
done
echo "lathe fuzz: ${#targets[@]} targets, $total executions in ${SECONDS_EACH}s each, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} = 0 ]
