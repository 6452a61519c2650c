#!/usr/bin/env bash
# tests/slurm/cluster.sh - a one-node Slurm cluster in a folder, for the tests (issue 17): munged,
# slurmctld and slurmd from Debian's munge and slurm-wlm, as the current user (root in CI), no
# systemd, no accounting, state and logs in DIR, ports of its own.
#   tests/slurm/cluster.sh start DIR   writes DIR/slurm.conf, starts the daemons, waits for the node
#   tests/slurm/cluster.sh stop DIR    stops them (every daemon it started, by its pid file)
# Prints `export SLURM_CONF=DIR/slurm.conf` on success; exits 77 (skip) with the reason when
# Slurm or munge is not installed or cannot start here, 1 on another failure.
set -euo pipefail
cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,8p' "$0"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "slurm: $*" >&2; exit 77; }

stop() {
  for d in slurmd slurmctld munged; do
    [ -f "$dir/$d.pid" ] || continue
    pid=$(cat "$dir/$d.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/$d.pid"
  done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "cluster.sh: start or stop, not $cmd" >&2; exit 2; }
for b in munged slurmctld slurmd sbatch; do
  command -v "$b" >/dev/null || skip "$b not found (Debian's munge and slurm-wlm: make deps)"
done
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
# a key of its own, readable by the user that runs the daemons only
[ -f "$dir/munge/munge.key" ] || { head -c 1024 /dev/urandom > "$dir/munge/munge.key"; chmod 600 "$dir/munge/munge.key"; }
chmod 700 "$dir/munge"
munged --force --socket="$dir/munge/munge.sock" --key-file="$dir/munge/munge.key" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" 2>"$dir/munge/start.err" ||
  skip "munged does not start here: $(tail -1 "$dir/munge/start.err")"
host=$(hostname -s)
port=$(( 20000 + RANDOM % 20000 ))
sed -e "s|@DIR@|$dir|g" -e "s|@HOST@|$host|g" -e "s|@USER@|$(id -un)|g" -e "s|@CPUS@|$(nproc)|g" \
  -e "s|@CTLD_PORT@|$port|g" -e "s|@SLURMD_PORT@|$((port + 1))|g" "$here/slurm.conf.in" > "$dir/slurm.conf"
export SLURM_CONF="$dir/slurm.conf"
slurmctld -i 2>"$dir/slurmctld.err" || { stop; skip "slurmctld does not start here: $(tail -1 "$dir/slurmctld.err")"; }
slurmd 2>"$dir/slurmd.err" || { stop; skip "slurmd does not start here: $(tail -1 "$dir/slurmd.err")"; }
for _ in $(seq 100); do # the node registers within a few seconds
  state=$(sinfo -h -N -o %T 2>/dev/null | head -1 || true)
  [ "$state" = idle ] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
  sleep 0.2
done
echo "slurm: the node did not come up (state ${state:-none}); $dir/slurmctld.log and slurmd.log say why" >&2
stop
exit 1
