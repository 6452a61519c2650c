#!/usr/bin/env bash
# run.sh - the training benchmark (docs/PERFORMANCE.md, "Training step, CPU"): lathe against PyTorch on the CPU,
# same architecture (the same spec file), batch, precision (fp32), optimizer (SGD with momentum)
# and thread count, in one run. The peers take turns within each round (lathe, PyTorch eager from
# PyPI, the same under torch.compile, Debian's PyTorch), so a slow spell of this shared machine hits
# all alike. Prints, per model and peer, the median images/s with its range over the rounds, the
# median of lathe's per-round ratio to it with that ratio's range, and the peak memory; and warns
# for each run during which other processes used the CPU.
# Environment: LATHE_BUILD (build), THREADS (nproc), BATCH (32), STEPS (10), ROUNDS (3), MODELS (the
# specs here), PEERS ("torch compile debian": any of them, in that order of turns), TORCH_VENV
# (.venv-ultralytics, the accuracy benchmark's, which holds PyPI's torch 2.15; made with PyPI's
# torch on first use if it lacks torch), DEBIAN_PYTHON (/usr/bin/python3 with python3-torch; its
# peer is left out, with a note, when it has no torch), OTHER_CPU (0.2: the cores' worth of CPU
# time other processes may use during a run before it is flagged). Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/train
abs() { case $1 in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
BUILD=$(abs "${LATHE_BUILD:-build}")
THREADS=${THREADS:-$(nproc)}
BATCH=${BATCH:-32}
STEPS=${STEPS:-10}
ROUNDS=${ROUNDS:-3}
MODELS=${MODELS:-"$HERE/resnet_cls.yaml $HERE/detector_backbone.yaml $HERE/detector_n.yaml"}
PEERS=${PEERS:-"torch compile debian"}
TORCH_VENV=$(abs "${TORCH_VENV:-.venv-ultralytics}")
TORCH_PACKAGE=torch==2.15.0 # the version of docs/PERFORMANCE.md; its wheel brings CUDA libraries (~5 GB)
DEBIAN_PYTHON=${DEBIAN_PYTHON:-/usr/bin/python3}
OTHER_CPU=${OTHER_CPU:-0.2}
die() { echo "bench: error: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

peers=()
for p in $PEERS; do
  case $p in
  torch | compile)
    if ! "$TORCH_VENV/bin/python" -c 'import torch' 2>/dev/null; then
      say "creating $TORCH_VENV with $TORCH_PACKAGE (once)"
      python3 -m venv "$TORCH_VENV" || die "python3 -m venv failed"
      "$TORCH_VENV/bin/pip" install --quiet --progress-bar off "$TORCH_PACKAGE" || die "pip install $TORCH_PACKAGE failed"
    fi
    peers+=("$p") ;;
  debian)
    if "$DEBIAN_PYTHON" -c 'import torch' 2>/dev/null; then peers+=(debian)
    else say "left out: Debian's PyTorch ($DEBIAN_PYTHON has no torch: apt-get install python3-torch)"; fi ;;
  *) die "PEERS: unknown peer $p (torch, compile, debian)" ;;
  esac
done
[ ${#peers[@]} -gt 0 ] || die "no peer to compare with"

BIN=$BUILD/bench_train
make -s -C "$ROOT" --no-print-directory bench-train BENCH_TRAIN="$BIN" >/dev/null || die "cannot build bench_train"
export OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
printf 'training benchmark: batch %d, %d threads, fp32, SGD momentum, %d timed steps after 2 warm-up, %d rounds, %s\n' \
  "$BATCH" "$THREADS" "$STEPS" "$ROUNDS" "$(date -u +%Y-%m-%d)"

# one run of peer $1 on the model of spec $2 as a JSON line, with the CPU others used meanwhile
run_peer() {
  local json=$BUILD/bench_model.json
  case $1 in
  lathe) python3 "$HERE/measure.py" "$BIN" "$2" "$BATCH" "$STEPS" "$THREADS" ;;
  torch) python3 "$HERE/measure.py" "$TORCH_VENV/bin/python" "$HERE/peer_torch.py" "$json" "$BATCH" "$STEPS" "$THREADS" ;;
  compile)
    python3 "$HERE/measure.py" "$TORCH_VENV/bin/python" "$HERE/peer_torch.py" "$json" "$BATCH" "$STEPS" "$THREADS" cpu fp32 compile ;;
  debian) python3 "$HERE/measure.py" "$DEBIAN_PYTHON" "$HERE/peer_torch.py" "$json" "$BATCH" "$STEPS" "$THREADS" ;;
  esac
}

for spec in $MODELS; do
  "$BIN" "$spec" --model-json >"$BUILD/bench_model.json" || die "cannot resolve $spec"
  runs=()
  for ((r = 0; r < ROUNDS; r++)); do
    for p in lathe "${peers[@]}"; do
      line=$(run_peer "$p" "$spec") || die "$p failed on $spec"
      runs+=("$p $line")
    done
  done
  python3 - "$(basename "$spec" .yaml)" "$OTHER_CPU" "${runs[@]}" <<'PY'
import json, statistics, sys
name, limit = sys.argv[1], float(sys.argv[2])
runs = {}
for arg in sys.argv[3:]:
    peer, line = arg.split(" ", 1)
    runs.setdefault(peer, []).append(json.loads(line))
lathe = runs.pop("lathe")
ips = lambda rows: [r["images_per_s"] for r in rows]
label = {"torch": "PyTorch {v} eager", "compile": "PyTorch {v} compile", "debian": "PyTorch {v} (Debian) eager"}
print(f"{name} (params lathe {lathe[0]['params']})")
print(f"  {'peer':30s} {'img/s median':>12s} {'range':>13s} {'lathe/peer':>10s} {'ratio range':>11s} {'peak MiB':>9s}")
print(f"  {'lathe':30s} {statistics.median(ips(lathe)):12.1f} {min(ips(lathe)):6.1f}-{max(ips(lathe)):<6.1f}"
      f" {'':>10s} {'':>11s} {max(r['peak_rss_mib'] for r in lathe):9.0f}")
for peer, rows in runs.items():
    ratios = [l / p for l, p in zip(ips(lathe), ips(rows))]
    print(f"  {label[peer].format(v=rows[0]['torch']):30s} {statistics.median(ips(rows)):12.1f} "
          f"{min(ips(rows)):6.1f}-{max(ips(rows)):<6.1f} {statistics.median(ratios):10.2f} "
          f"{min(ratios):5.2f}-{max(ratios):<5.2f} {max(r['peak_rss_mib'] for r in rows):9.0f}"
          + ("" if rows[0]["params"] == lathe[0]["params"] else f"  (params {rows[0]['params']})"))
for peer, rows in [("lathe", lathe)] + list(runs.items()):
    for i, r in enumerate(rows):
        if r["other_cpu"] > limit:
            print(f"  warning: round {i + 1}, {peer}: other processes used {r['other_cpu']:.2f} cores meanwhile")
PY
done
