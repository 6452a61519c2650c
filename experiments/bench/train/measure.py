"""Runs one benchmark command and prints its JSON line with two fields added: wall_s, and
other_cpu, the cores' worth of CPU time that processes other than this command used while it ran
(the machine's busy time from /proc/stat less the command's own user and system time, over the wall
time). On a shared machine a round with other_cpu well above 0 is not a fair comparison: run.sh
warns about it.

usage: python3 measure.py COMMAND [ARG...]   (the command prints one JSON line on stdout)"""
import json
import os
import subprocess
import sys
import time


def busy_seconds():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    before, t0, mine0 = busy_seconds(), time.perf_counter(), os.times()
    run = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    wall, mine1, after = time.perf_counter() - t0, os.times(), busy_seconds()
    if run.returncode:
        sys.exit(run.returncode)
    own = (mine1.children_user - mine0.children_user) + (mine1.children_system - mine0.children_system)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(wall, 2)
    result["other_cpu"] = round(max(0.0, (after - before) - own) / wall, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
