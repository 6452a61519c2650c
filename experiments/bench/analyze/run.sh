#!/usr/bin/env bash
# run.sh - the analyze benchmark (README.md beside this file): `lathe analyze` on synthetic datasets
# of 10k and 100k samples against a Python peer (peer_numpy.py) on the same cores. Prints samples/s,
# each stage's seconds, peak memory and how the cost per sample changes from the smallest to the
# largest size (1.00 = linear). Exit status: 0 done, 1 the benchmark could not run.
#
# Environment (all optional):
#   LATHE_BUILD  build folder holding the lathe binary (default build); LATHE the binary itself
#   BENCH_DIR    cache of archives, datasets and logs (default /tmp/lathe-bench-analyze)
#   SIZES        dataset sizes in samples (default "10000 100000"); WIDTH x HEIGHT (160 x 120),
#                SIZE the letterbox side (128), SEED (3)
#   THREADS      cores for both (default nproc); RUNS timed lathe runs per size, median (default 3)
#   PEER=0       skip the Python peer; PYTHON (default .venv/bin/python)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/analyze
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$ROOT/$1" ;; esac; }
LATHE_BUILD=$(abs "${LATHE_BUILD:-build}")
LATHE=$(abs "${LATHE:-$LATHE_BUILD/lathe}")
BENCH_DIR=$(abs "${BENCH_DIR:-/tmp/lathe-bench-analyze}")
SIZES=${SIZES:-10000 100000}
WIDTH=${WIDTH:-160}
HEIGHT=${HEIGHT:-120}
SIZE=${SIZE:-128}
SEED=${SEED:-3}
THREADS=${THREADS:-$(nproc)}
RUNS=${RUNS:-3}
PEER=${PEER:-1}
PYTHON=$(abs "${PYTHON:-.venv/bin/python}")

die() { echo "bench: error: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }
[ -x "$LATHE" ] || die "no lathe binary at $LATHE (run make, or set LATHE_BUILD/LATHE)"
"$LATHE" analyze --help >/dev/null 2>&1 || die "$LATHE has no working 'analyze' subcommand"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for peak memory (apt-get install time)"
if [ "$PEER" = 1 ]; then
  [ -x "$PYTHON" ] || die "no Python at $PYTHON (make deps creates .venv)"
  "$PYTHON" -c 'import h5py, hdf5plugin, numpy' 2>/dev/null || die "$PYTHON lacks h5py/hdf5plugin/numpy"
fi
mkdir -p "$BENCH_DIR/logs"

# Synthetic archives are prefixes of one another (sample i never depends on the count), so the
# sizes hold the same kind of data; each is made and ingested once and kept in BENCH_DIR.
dataset() { # count -> path of the dataset
  local n=$1 tar="$BENCH_DIR/archive-$1-${WIDTH}x${HEIGHT}-seed$SEED.tar" ds="$BENCH_DIR/ds-$1-${WIDTH}x${HEIGHT}-$SIZE-seed$SEED"
  if [ ! -f "$ds/manifest.json" ]; then
    say "making $n samples of ${WIDTH}x${HEIGHT} in $ds"
    [ -f "$tar" ] || "$LATHE" synth "$tar" --count "$n" --seed "$SEED" --width "$WIDTH" --height "$HEIGHT" \
      --threads "$THREADS" >"$BENCH_DIR/logs/synth-$n.log" 2>&1 || die "synth failed (see $BENCH_DIR/logs)"
    rm -rf "$ds"
    "$LATHE" ingest "$tar" -o "$ds" --size "$SIZE" --threads "$THREADS" >"$BENCH_DIR/logs/ingest-$n.log" 2>&1 ||
      die "ingest failed (see $BENCH_DIR/logs)"
  fi
  printf '%s\n' "$ds"
}

results="$BENCH_DIR/results.tsv"
: >"$results"
for n in $SIZES; do
  ds=$(dataset "$n")
  for r in $(seq 1 "$RUNS"); do
    out="$BENCH_DIR/out-$n"
    rm -rf "$out"
    /usr/bin/time -f "%M" -o "$BENCH_DIR/logs/rss-$n-$r" \
      "$LATHE" analyze "$ds" -o "$out" --threads "$THREADS" >"$BENCH_DIR/logs/analyze-$n-$r.log" 2>&1 ||
      die "analyze failed (see $BENCH_DIR/logs/analyze-$n-$r.log)"
    "$PYTHON" - "$out/analysis.json" "$(cat "$BENCH_DIR/logs/rss-$n-$r")" "$n" >>"$results" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
st, nd = a["stage_seconds"], a["findings"]["near-duplicate"]
print("\t".join(map(str, ["lathe", sys.argv[3], a["samples"], a["seconds"], st["pixels"], st["labels"] + st["images"] + st["sensors"],
    st["near_duplicate_search"], st["near_duplicate_verify"], nd["candidate_pairs"], nd["count"], int(sys.argv[2]) / 1024])))
PY
  done
  if [ "$PEER" = 1 ]; then
    say "python peer on $n samples"
    /usr/bin/time -f "%M" -o "$BENCH_DIR/logs/rss-peer-$n" "$PYTHON" "$HERE/peer_numpy.py" "$ds" "$THREADS" 12 \
      >"$BENCH_DIR/logs/peer-$n.json" 2>"$BENCH_DIR/logs/peer-$n.log" || die "peer failed (see $BENCH_DIR/logs)"
    "$PYTHON" -c 'import json,sys; a=json.load(open(sys.argv[1])); print("\t".join(map(str,["peer",sys.argv[3],a["samples"],a["seconds"],a["near_pairs"],int(open(sys.argv[2]).read())/1024])))' \
      "$BENCH_DIR/logs/peer-$n.json" "$BENCH_DIR/logs/rss-peer-$n" "$n" >>"$results"
  fi
done

"$PYTHON" - "$results" "$THREADS" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
lathe, peer = {}, {}
for r in rows:
    (lathe if r[0] == "lathe" else peer).setdefault(int(r[1]), []).append([float(x) for x in r[2:]])
def med(runs, k): return statistics.median(x[k] for x in runs)
print(f"analyze benchmark: {sys.argv[2]} threads, median of {len(next(iter(lathe.values())))} runs")
print("  samples   lathe s/s  total s  pixels  labels+  nd-search  nd-verify  candidates  near-dup  peak MiB |  peer s/s  peer MiB  lathe/peer")
sizes = sorted(lathe)
for n in sizes:
    L = lathe[n]
    s, t = med(L, 0), med(L, 1)
    line = f"  {int(s):7d}  {s / t:10.0f}  {t:7.2f}  {med(L, 2):6.2f}  {med(L, 3):7.2f}  {med(L, 4):9.2f}  {med(L, 5):9.2f}  {med(L, 6):10.0f}  {med(L, 7):8.0f}  {med(L, 8):8.0f}"
    if n in peer:
        P = peer[n][0]
        line += f" |  {P[0] / P[1]:8.0f}  {P[3]:8.0f}  {(s / t) / (P[0] / P[1]):10.2f}"
    print(line)
if len(sizes) > 1:
    a, b = lathe[sizes[0]], lathe[sizes[-1]]
    na, nb = med(a, 0), med(b, 0)
    print(f"  cost per sample, {int(nb)} against {int(na)} samples (1.00 = linear):")
    for name, k in (("total", 1), ("pixel pass", 2), ("labels, images, sensors", 3), ("near-dup search", 4), ("near-dup verify", 5)):
        pa, pb = med(a, k) / na, med(b, k) / nb
        print(f"    {name:26s} {pb / pa if pa > 0 else float('nan'):6.2f}")
    ca, cb = med(a, 6), med(b, 6)
    print(f"    {'verified pairs per sample':26s} {(cb / nb) / (ca / na) if ca > 0 else float('nan'):6.2f}   (pairs the data holds: grows with the square when it is full of look-alikes)")
PY
