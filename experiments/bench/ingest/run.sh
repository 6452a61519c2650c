#!/usr/bin/env bash
# run.sh - the ingest benchmark (README.md beside this file): `lathe ingest --store pixels --size 640`
# against the pipeline limit (pipeline_limit.c), a plain Python peer and a tuned Python peer, on the
# same synthetic archive and the same cores. Prints images/s for each and the three ratios with
# PASS/FAIL. Exit status: 0 all targets met, 3 a target missed, 1 the benchmark could not run.
#
# Environment (all optional):
#   LATHE_BUILD  build folder holding the lathe binary (default build; `make bench` sets it)
#   LATHE        the lathe binary (default $LATHE_BUILD/lathe)
#   BENCH_DIR    cache of archives, outputs and logs (default /tmp/lathe-bench)
#   COUNT        images in the archive (default 2000); WIDTH x HEIGHT (default 1280 x 960); SEED (1)
#   SIZE         letterbox side (default 640); LEVEL zstd level (default 1)
#   THREADS      cores for every contender (default nproc)
#   RUNS         timed rounds (default 3; each round runs every contender in turn; medians reported)
#   PYTHON       interpreter with h5py, hdf5plugin, numpy, Pillow (default .venv/bin/python)
#   TUNED_POOLS  pools the tuned peer runs with, the faster counts (default "thread process")
#   CHECK=0      skip the untimed first round that checks every output's pixels
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/ingest
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }

LATHE_BUILD=$(abs "${LATHE_BUILD:-build}")
LATHE=$(abs "${LATHE:-$LATHE_BUILD/lathe}")
BENCH_DIR=$(abs "${BENCH_DIR:-/tmp/lathe-bench}")
COUNT=${COUNT:-2000}
WIDTH=${WIDTH:-1280}
HEIGHT=${HEIGHT:-960}
SEED=${SEED:-1}
SIZE=${SIZE:-640}
LEVEL=${LEVEL:-1}
THREADS=${THREADS:-$(nproc)}
RUNS=${RUNS:-3}
CHECK=${CHECK:-1}
TUNED_POOLS=${TUNED_POOLS:-thread process}
TUNED=()
for pool in $TUNED_POOLS; do
  case $pool in thread | process) TUNED+=("tuned-$pool") ;; *) echo "bench: error: TUNED_POOLS: no pool '$pool'" >&2; exit 1 ;; esac
done
[ ${#TUNED[@]} -gt 0 ] || { echo "bench: error: TUNED_POOLS is empty" >&2; exit 1; }
PYTHON=$(abs "${PYTHON:-.venv/bin/python}")

die() { echo "bench: error: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

# --- what the contenders need ----------------------------------------------------------------------
[ -x "$LATHE" ] || die "no lathe binary at $LATHE (run make, or set LATHE_BUILD/LATHE)"
"$LATHE" ingest --help >/dev/null 2>&1 || die "$LATHE has no working 'ingest' subcommand"
"$LATHE" synth --help >/dev/null 2>&1 || die "$LATHE has no working 'synth' subcommand"
[ -x "$PYTHON" ] || die "no Python at $PYTHON (make deps creates .venv)"
"$PYTHON" -c 'import h5py, hdf5plugin, numpy, PIL' 2>/dev/null ||
  die "$PYTHON lacks h5py/hdf5plugin/numpy/Pillow (make deps)"
# The tuned peer compresses in its workers with the zstandard package: installed here if missing,
# because it is the benchmark's own need, not the test oracles' (tests/requirements.txt).
if ! "$PYTHON" -c 'import zstandard' 2>/dev/null; then
  say "installing zstandard into $(dirname "$(dirname "$PYTHON")")"
  "$PYTHON" -m pip install -q zstandard || die "pip could not install zstandard"
fi

mkdir -p "$BENCH_DIR/bin" "$BENCH_DIR/out" "$BENCH_DIR/logs"

# pipeline_limit is built with the project's own CFLAGS, read from the Makefile (dependency-file
# flags dropped), and links TurboJPEG and zstd directly (it does not use liblathe).
# shellcheck disable=SC2016  # $(CFLAGS) is for make to expand
CFLAGS_PROJECT=$(printf 'lathe-bench-print-cflags:\n\t@echo "$(CFLAGS)"\n' |
  make -s --no-print-directory -C "$ROOT" -f Makefile -f - lathe-bench-print-cflags 2>/dev/null |
  sed -e 's/ -MMD//' -e 's/ -MP//') || true
[ -n "$CFLAGS_PROJECT" ] || die "could not read CFLAGS from $ROOT/Makefile"
LIMIT_BIN=$BENCH_DIR/bin/pipeline_limit
# shellcheck disable=SC2086,SC2046  # the flags are lists of words
${CC:-gcc} $CFLAGS_PROJECT -o "$LIMIT_BIN" "$HERE/pipeline_limit.c" \
  $(pkg-config --libs libturbojpeg libzstd 2>/dev/null || echo -lturbojpeg -lzstd) -pthread ||
  die "could not build pipeline_limit"

# --- the archive, made once per size and seed --------------------------------------------------------
ARCHIVE=$BENCH_DIR/archive-${COUNT}x${WIDTH}x${HEIGHT}-seed$SEED
if [ ! -e "$ARCHIVE/.complete" ]; then
  say "generating $COUNT images of ${WIDTH}x${HEIGHT} in $ARCHIVE"
  rm -rf "$ARCHIVE" "$ARCHIVE.tmp"
  "$LATHE" synth "$ARCHIVE.tmp" --count "$COUNT" --width "$WIDTH" --height "$HEIGHT" --seed "$SEED" \
    --png-ratio 0 >"$BENCH_DIR/logs/synth.log" 2>&1 || die "lathe synth failed: see $BENCH_DIR/logs/synth.log"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  touch "$ARCHIVE/.complete"
fi
IMAGES=$ARCHIVE/images
N=$(find "$IMAGES" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.jpeg' \) | wc -l)
[ "$N" -gt 0 ] || die "no JPEG images in $IMAGES"
cat "$IMAGES"/* >/dev/null # every contender reads from the page cache

OUT=$BENCH_DIR/out
clean_outputs() { rm -rf "$OUT/lathe" "$OUT"/*.h5; }

# The command of each contender; outputs land in $OUT.
run_one() {
  case $1 in
    lathe) "$LATHE" ingest "$ARCHIVE" -o "$OUT/lathe" --store pixels --size "$SIZE" --threads "$THREADS" ;;
    limit) "$LIMIT_BIN" "$IMAGES" "$THREADS" --size "$SIZE" --level "$LEVEL" ;;
    plain) "$PYTHON" "$HERE/peer_plain.py" "$IMAGES" "$OUT/plain.h5" --threads "$THREADS" --size "$SIZE" --level "$LEVEL" ;;
    tuned-thread | tuned-process)
      "$PYTHON" "$HERE/peer_tuned.py" "$IMAGES" "$OUT/$1.h5" --threads "$THREADS" --size "$SIZE" --level "$LEVEL" \
        --pool "${1#tuned-}" ;;
  esac
}

# Times one run as a whole process (bash's time: wall, and the user+sys of it and its children).
# Appends "name round wall cpu limit_cpu_rate" to the results; the last field only for the limit,
# which reports its own figure (images * cores / CPU seconds of the decode+compress section).
RESULTS=$BENCH_DIR/results.tsv
timed() {
  local name=$1 round=$2 log=$BENCH_DIR/logs/$1-$2.log
  clean_outputs
  sync # earlier runs' dirty pages are written back now, not during this run
  local TIMEFORMAT='%R %U %S' t
  if ! t=$({ time run_one "$name" >"$log" 2>&1; } 2>&1); then
    die "$name failed (round $round): see $log"
  fi
  local extra=-
  if [ "$name" = limit ]; then
    extra=$(sed -n 's/.*limit \([0-9.]*\) images\/s.*/\1/p' "$log")
    [ -n "$extra" ] || die "pipeline_limit printed no limit: see $log"
  fi
  echo "$name $round $t $extra" | awk '{printf "%s\t%s\t%s\t%.3f\t%s\n", $1, $2, $3, $4 + $5, $6}' >>"$RESULTS"
}

say "$N images ${WIDTH}x${HEIGHT} -> ${SIZE}x${SIZE}x3, zstd $LEVEL, $THREADS threads, $RUNS rounds"
: >"$RESULTS"
if [ "$CHECK" != 0 ]; then
  # Untimed: each writer's output is opened with h5py + hdf5plugin and its pixels compared.
  for name in lathe plain "${TUNED[@]}"; do
    clean_outputs
    run_one "$name" >"$BENCH_DIR/logs/$name-check.log" 2>&1 || die "$name failed: see $BENCH_DIR/logs/$name-check.log"
    case $name in lathe) out=$OUT/lathe ;; *) out=$OUT/$name.h5 ;; esac
    "$PYTHON" "$HERE/check_outputs.py" "$IMAGES" "$out" --size "$SIZE" >&2 || die "$name wrote wrong pixels"
  done
fi
for ((r = 1; r <= RUNS; r++)); do
  for name in lathe limit plain "${TUNED[@]}"; do
    timed "$name" "$r"
  done
  say "round $r of $RUNS done"
done
clean_outputs

# --- medians and ratios --------------------------------------------------------------------------
"$PYTHON" - "$RESULTS" "$N" "$THREADS" "$WIDTH" "$HEIGHT" "$SIZE" "$LEVEL" "$RUNS" <<'EOF'
import os, statistics, sys
path, n, threads, width, height, size, level, runs = sys.argv[1], *map(int, sys.argv[2:])
rows = [l.split("\t") for l in open(path).read().splitlines()]
rate, cpu_ms, limit_cpu = {}, {}, {}
for name, rnd, wall, cpu, extra in rows:
    rate.setdefault(name, {})[int(rnd)] = n / float(wall)
    cpu_ms.setdefault(name, []).append(float(cpu) * 1e3 / n)
    if extra != "-":
        limit_cpu[int(rnd)] = float(extra)
med = lambda xs: statistics.median(list(xs))
print(f"ingest benchmark: {n} images {width}x{height} -> {size}x{size}x3, zstd level {level}, "
      f"{threads} threads, median of {runs} rounds")
print(f"  {'':26} {'images/s':>9} {'cpu ms/image':>13}")
# The tuned peer runs with a thread pool and/or a process pool; the faster counts, round by round.
tuned = [k for k in ("tuned-thread", "tuned-process") if k in rate]
rate["tuned"] = {r: max(rate[k][r] for k in tuned) for r in rate["lathe"]}
label = {"lathe": "lathe ingest", "plain": "plain Python peer", "tuned-thread": "tuned peer, threads",
         "tuned-process": "tuned peer, processes"}
for name in ["lathe", "plain"] + tuned:
    print(f"  {label[name]:26} {med(rate[name].values()):9.1f} {med(cpu_ms[name]):13.2f}")
print(f"  {'pipeline limit (cpu/cores)':26} {med(limit_cpu.values()):9.1f}")
print(f"  {'pipeline limit (wall)':26} {med(rate['limit'].values()):9.1f} {med(cpu_ms['limit']):13.2f}")
cores = min(threads, len(os.sched_getaffinity(0)))
lathe_cpu = med(cores * 1e3 / ms for ms in cpu_ms["lathe"])
print(f"  {'lathe ingest (cpu/cores)':26} {lathe_cpu:9.1f}   (its CPU time over the cores: no waiting)")
# Ratios round by round (each round's contenders ran back to back), then the median.
checks = [("lathe / limit", limit_cpu, 0.9), ("lathe / plain", rate["plain"], 3.0),
          ("lathe / tuned" + (" (faster)" if len(tuned) > 1 else ""), rate["tuned"], 1.3)]
failed = False
for what, other, target in checks:
    ratio = med(rate["lathe"][r] / other[r] for r in rate["lathe"])
    ok = ratio >= target
    failed |= not ok
    print(f"  {what:26} {ratio:9.2f}   target >= {target:<4} {'PASS' if ok else 'FAIL'}")
# Not judged: both by wall clock in the same round, which a machine shared with other work
# affects alike (the judged ratio sets lathe's wall-clock rate against the limit's CPU time).
print(f"  {'(lathe / limit, both wall)':26} {med(rate['lathe'][r] / rate['limit'][r] for r in rate['lathe']):9.2f}")
sys.exit(3 if failed else 0)
EOF
