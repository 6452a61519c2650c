#!/usr/bin/env bash
# run.sh - the evaluation benchmark (README.md beside this file): `lathe eval --detections` against
# pycocotools (and faster-coco-eval when it is installed) on 5000 images with ~7 ground-truth boxes
# and 100 detections each, whole jobs from loading the files to the summary, in one run. Compares
# every contender's 12 metrics with pycocotools' and fails (exit 1) when one differs by more than
# TOLERANCE (1e-9: lathe matches pycocotools exactly up to float printing); prints seconds and the
# ratios. Exit 1 also when it cannot run.
# Environment: LATHE_BUILD (build), BENCH_DIR (/tmp/lathe-bench-eval), IMAGES (5000), RUNS (3),
# PYTHON (.venv/bin/python with pycocotools), THREADS (nproc), TOLERANCE (1e-9).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/eval
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
BENCH_DIR=${BENCH_DIR:-/tmp/lathe-bench-eval}
IMAGES=${IMAGES:-5000}
RUNS=${RUNS:-3}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-$(nproc)}
die() { echo "bench: error: $*" >&2; exit 1; }
[ -x "$BUILD/lathe" ] || die "no $BUILD/lathe (run make)"
"$PYTHON" -c 'import pycocotools' 2>/dev/null || die "$PYTHON lacks pycocotools (make deps)"
DATA=$BENCH_DIR/data-$IMAGES
[ -f "$DATA/dt.json" ] || "$PYTHON" "$HERE/make_data.py" "$DATA" "$IMAGES" >&2
FASTER=0
"$PYTHON" -c 'import faster_coco_eval' 2>/dev/null && FASTER=1
"$PYTHON" - "$BUILD/lathe" "$DATA" "$HERE" "$RUNS" "$FASTER" "$PYTHON" "${TOLERANCE:-1e-9}" <<'PY'
import json, statistics, subprocess, sys, time
lathe, data, here, runs, faster, py = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1", sys.argv[6]
tolerance = float(sys.argv[7])
gt, dt = f"{data}/gt.json", f"{data}/dt.json"
def run_lathe():
    t0 = time.perf_counter()
    subprocess.run([lathe, "eval", "--detections", dt, "--gt", gt, "-o", f"{data}/out"], check=True, capture_output=True)
    sec = time.perf_counter() - t0
    return sec, list(json.load(open(f"{data}/out/report.json"))["metrics"].values())
def run_peer(extra):
    out = subprocess.run([py, f"{here}/peer_pycocotools.py", gt, dt, *extra], check=True, capture_output=True, text=True)
    r = json.loads(out.stdout)
    return r["seconds"], r["stats"]
times = {"lathe": [], "pycocotools": [], "faster-coco-eval": []}
stats = {}
for _ in range(runs):
    for name, fn in (("lathe", run_lathe), ("pycocotools", lambda: run_peer([])),
                     ("faster-coco-eval", lambda: run_peer(["--faster"]))):
        if name == "faster-coco-eval" and not faster:
            continue
        sec, st = fn()
        times[name].append(sec)
        stats[name] = st
print(f"evaluation benchmark: {data}, median of {runs} runs (whole jobs: load, evaluate, summarize)")
KEYS = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small", "AR_medium",
        "AR_large"]
disagree = []
for name in ("lathe", "faster-coco-eval"):
    if name not in stats:
        print(f"  metrics: {name} not installed ({py} -m pip install faster-coco-eval): not compared")
        continue
    diffs = [abs(a - b) for a, b in zip(stats[name], stats["pycocotools"])]
    worst = max(diffs)
    print(f"  metrics: {name} vs pycocotools, largest difference {worst:.2e}")
    if len(stats[name]) != 12 or worst > tolerance:
        disagree.append(name)
        for key, a, b, d in zip(KEYS, stats[name], stats["pycocotools"], diffs):
            if d > tolerance:
                print(f"    {key}: {name} {a:.12f}, pycocotools {b:.12f}")
lat = statistics.median(times["lathe"])
for name, ts in times.items():
    if ts:
        med = statistics.median(ts)
        print(f"  {name:18s} {med:8.2f} s   lathe speed-up x{med / lat:6.1f}")
if disagree:
    print(f"bench: error: {', '.join(disagree)} disagree(s) with pycocotools by more than {tolerance:g}", file=sys.stderr)
    sys.exit(1)
PY
