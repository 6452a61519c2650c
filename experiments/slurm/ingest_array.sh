#!/usr/bin/env bash
# experiments/slurm/ingest_array.sh - ingest a large archive as a Slurm job array, then merge the
# parts in a job that starts only when every part succeeded:
#   experiments/slurm/ingest_array.sh ARCHIVE DATASET [PARTS] [-- INGEST OPTIONS...]
# Each array task ingests its stable slice (`lathe ingest --part I/N`) into DATASET.parts/I; a
# killed or requeued task resumes its part where it stopped (ingest resumes). The merge joins the
# complete parts into DATASET. CPUS cores a task (default 4); any other sbatch option (partition,
# account) goes in SBATCH_OPTS.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
archive=$1 dataset=$2 parts=${3:-16}
shift $(( $# >= 3 ? 3 : 2 ))
[ "${1:-}" = "--" ] && shift
lathe=${LATHE:-lathe}
cpus=${CPUS:-4}
mkdir -p "$dataset.parts" "$dataset.logs"
# one task per part, CPUS cores each; %a is the task's index
array=$(sbatch --parsable ${SBATCH_OPTS:-} --job-name=lathe-ingest --array=0-$((parts - 1)) --cpus-per-task="$cpus" \
  --requeue --output="$dataset.logs/part-%a.log" \
  --wrap="$lathe ingest '$archive' -o '$dataset.parts/'\$SLURM_ARRAY_TASK_ID --part \$SLURM_ARRAY_TASK_ID/$parts --threads $cpus $*")
# afterok: only when every array task exited 0 (a failed part leaves the merge pending, never half done)
merge=$(sbatch --parsable ${SBATCH_OPTS:-} --job-name=lathe-merge --dependency=afterok:"$array" \
  --output="$dataset.logs/merge.log" \
  --wrap="$lathe ingest --merge -o '$dataset' $(for i in $(seq 0 $((parts - 1))); do printf "'%s' " "$dataset.parts/$i"; done)")
echo "ingest array $array ($parts parts), merge $merge -> $dataset"
