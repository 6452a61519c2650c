#!/usr/bin/env python3
"""tests/mutants/run.py - the mutation check (`make mutants`, issue 24 item 7; on demand, not in
`make test` nor CI). Each entry of tests/mutants/mutants.txt is a one-line mutation: a file, a
fragment that must occur exactly once in it (so an entry whose code moved fails loudly instead of
testing nothing), its replacement, and the tests that should catch it. For each, this script applies
the mutation, rebuilds, runs the covering tests and records the mutant as killed (a covering test
failed) or survived (all passed). It prints a table and exits 1 if any survived, 2 on an error (a
fragment not found once, a mutant that does not compile, a covering test failing before mutation).

The mutations are applied to a private copy of the tree, build/mutants/tree/ (git's tracked and
untracked-not-ignored files, refreshed by content on each run), built there into its own build/
with CUDA=0: the working tree itself is never written, so a `make test` running beside this one
never compiles a mutant. The copy's file is restored byte for byte after each mutation (finally:
also on Ctrl-C or SIGTERM) and checked against the tree's.

  tests/mutants/run.py                       every mutation
  tests/mutants/run.py --only a,b            some (make mutants MUTANTS=a,b)
  tests/mutants/run.py --list                the list
  --all-tests   run every covering test of a mutant, not only up to the first that kills it
  --no-baseline skip running the covering tests on the unmutated copy first
  -j N          make's jobs (2)
"""
import argparse
import configparser
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIST = ROOT / "tests" / "mutants" / "mutants.txt"
WORK = ROOT / "build" / "mutants"
TREE = WORK / "tree"
BUILD = TREE / "build"  # BUILD_DIR=build inside the copy
PYTHON = ROOT / ".venv" / "bin" / "python"
TEST_TIMEOUT = 900


def load(path):
    cp = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=("#",),
                                   inline_comment_prefixes=None, empty_lines_in_values=False)
    cp.optionxform = str
    cp.read_string(path.read_text())
    muts = []
    for name in cp.sections():
        s = cp[name]
        missing = [k for k in ("file", "from", "to", "tests") if k not in s]
        if missing:
            sys.exit(f"mutants.txt: [{name}] lacks {', '.join(missing)}")
        if s["from"] == s["to"]:
            sys.exit(f"mutants.txt: [{name}] replaces a fragment by itself")
        muts.append({"name": name, "file": s["file"], "from": s["from"], "to": s["to"],
                     "tests": s["tests"].split(), "why": " ".join(s.get("why", "").split())})
    return muts


def tree_files():
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout
    return [f for f in out.decode().split("\0") if f and (ROOT / f).is_file() and not (ROOT / f).is_symlink()]


def sync_copy():
    """Refreshes build/mutants/tree from the working tree by content. A changed file is copied
    without its old mtime, so make rebuilds what depends on it."""
    TREE.mkdir(parents=True, exist_ok=True)
    files = tree_files()
    changed = 0
    for f in files:
        src, dst = ROOT / f, TREE / f
        data = src.read_bytes()
        if dst.is_file() and dst.read_bytes() == data:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        shutil.copymode(src, dst)
        changed += 1
    keep = set(files)
    for p in list(TREE.rglob("*")):  # sources deleted from the tree go from the copy too
        rel = p.relative_to(TREE).as_posix()
        if p.is_file() and not rel.startswith(("build/", ".venv", ".pytest_cache")) and "__pycache__" not in rel \
                and rel not in keep:
            p.unlink()
            changed += 1
    venv = TREE / ".venv"  # the text model's package is looked up in the tree's .venv
    if not venv.exists() and (ROOT / ".venv").is_dir():
        venv.symlink_to(ROOT / ".venv")
    return changed


def targets_for(tests):
    t = set()
    for spec in tests:
        kind, _, what = spec.partition(":")
        if kind == "unit":
            t.add(f"build/tests/{what}")
        elif kind == "py":
            t |= {"build/lathe", "build/plugins/liblathe_h5zstd.so", "build/liblathe_nn.so"}
            t |= {f"build/tests/tools/{p.stem}" for p in (TREE / "tests" / "tools").glob("*.c")}
        else:
            sys.exit(f"unknown test kind in {spec!r}: unit:NAME or py:NODEID")
    return sorted(t)


def build(targets, jobs, log):
    cmd = ["make", "--no-print-directory", "CUDA=0", "BUILD_DIR=build", f"-j{jobs}", *targets]
    with open(log, "w") as f:
        return subprocess.run(cmd, cwd=TREE, stdout=f, stderr=subprocess.STDOUT).returncode == 0


def run_test(spec, log):
    """0: passed, else failed (a timeout counts as failed). Returns (passed, names of failures)."""
    kind, _, what = spec.partition(":")
    env = dict(os.environ, LATHE=str(BUILD / "lathe"), LATHE_BUILD=str(BUILD),
               HDF5_PLUGIN_PATH=str(BUILD / "plugins"))
    env.pop("PYTEST_ADDOPTS", None)
    with tempfile.TemporaryDirectory(prefix="lathe-mutants.") as tmp:
        env["TMPDIR"] = tmp
        if kind == "unit":
            cmd = [str(BUILD / "tests" / what)]
        else:
            cmd = [str(PYTHON), "-m", "pytest", "-q", "-x", "-rf", "-p", "no:cacheprovider", what]
        with open(log, "a") as f:
            f.write(f"\n==== {spec}\n")
            f.flush()
            try:
                rc = subprocess.run(cmd, cwd=TREE, env=env, stdout=f, stderr=subprocess.STDOUT,
                                    timeout=TEST_TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                f.write(f"\n==== timed out after {TEST_TIMEOUT} s\n")
                return False, [f"{spec} (timed out)"]
    if rc == 0:
        return True, []
    if kind == "py":  # name the failing node ids
        failed = [line.split()[1] for line in Path(log).read_text().splitlines() if line.startswith("FAILED ")]
        return False, failed or [spec]
    section = Path(log).read_text().rsplit(f"==== {spec}\n", 1)[-1]  # cmocka names its failed tests
    cases = re.findall(r"^\[  FAILED  \] (\w+)$", section, re.M)
    return False, [f"{spec}::{c}" for c in dict.fromkeys(cases)] or [spec]


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Interrupted(Exception):
    pass


def on_term(signum, frame):
    raise Interrupted(f"signal {signum}")


def mutate_one(m, args, logdir):
    """Applies m to the copy, builds, runs its tests; always restores the copy's file."""
    rel = m["file"]
    path = TREE / rel
    original = path.read_bytes()
    if original != (ROOT / rel).read_bytes():
        return "error", f"{rel}: the copy differs from the tree (rerun to refresh it)"
    text = original.decode()
    n = text.count(m["from"])
    if n != 1:
        return "error", f"{rel}: the fragment occurs {n} times (must be once): {m['from']!r}"
    mutated = text.replace(m["from"], m["to"], 1)
    log = logdir / f"{m['name']}.log"
    try:
        path.write_text(mutated)
        if not build(targets_for(m["tests"]), args.jobs, log):
            return "error", f"the mutant does not compile (log: {log.relative_to(ROOT)})"
        killers = []
        for spec in m["tests"]:
            ok, failed = run_test(spec, log)
            killers += failed
            if killers and not args.all_tests:
                break
        return ("killed", ", ".join(killers)) if killers else ("survived", "")
    finally:
        path.write_bytes(original)  # a new mtime: the next build recompiles it
        if sha(path.read_bytes()) != sha(original):
            print(f"FATAL: {path} was not restored", file=sys.stderr)
            os._exit(3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=os.environ.get("MUTANTS", ""), help="comma-separated names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--all-tests", action="store_true")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    args = ap.parse_args()
    muts = load(LIST)
    if args.only:
        want = [w for w in args.only.split(",") if w]
        unknown = sorted(set(want) - {m["name"] for m in muts})
        if unknown:
            sys.exit(f"unknown mutants: {', '.join(unknown)} (--list names them)")
        muts = [m for m in muts if m["name"] in want]
    if args.list:
        for m in muts:
            print(f"{m['name']:28} {m['file']}: {m['from']!r} -> {m['to']!r}\n{'':28} tests: {' '.join(m['tests'])}")
        return 0
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    tree_before = {m["file"]: sha((ROOT / m["file"]).read_bytes()) for m in muts}
    start = time.time()
    logdir = WORK / "logs"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    print(f"mutation check: {len(muts)} mutants; copy of the tree in {TREE.relative_to(ROOT)} "
          f"({sync_copy()} files refreshed); logs in {logdir.relative_to(ROOT)}", flush=True)
    results = []
    try:
        every = sorted({t for m in muts for t in m["tests"]})
        if not build(targets_for(every), args.jobs, logdir / "baseline.log"):
            print(f"the unmutated copy does not build: {logdir / 'baseline.log'}")
            return 2
        if not args.no_baseline:
            bad = []
            for spec in every:
                ok, failed = run_test(spec, logdir / "baseline.log")
                bad += failed
            if bad:
                print(f"covering tests fail before any mutation (log: {logdir / 'baseline.log'}): {', '.join(bad)}")
                return 2
            print(f"baseline: the {len(every)} covering tests pass unmutated ({time.time() - start:.0f} s)", flush=True)
        for i, m in enumerate(muts, 1):
            t0 = time.time()
            verdict, detail = mutate_one(m, args, logdir)
            results.append((m, verdict, detail))
            print(f"[{i}/{len(muts)}] {m['name']}: {verdict}{' by ' + detail if verdict == 'killed' else ''}"
                  f"{': ' + detail if verdict == 'error' else ''} ({time.time() - t0:.0f} s)", flush=True)
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"\ninterrupted ({str(e) or 'Ctrl-C'}): every mutated file was restored", file=sys.stderr)
        return 130
    finally:
        for rel, h in tree_before.items():  # the tree is never written; say so if it changed anyway
            if sha((ROOT / rel).read_bytes()) != h:
                print(f"WARNING: {rel} changed in the tree during the run (not by this script)", file=sys.stderr)
    w = max(len(m["name"]) for m, _, _ in results) if results else 10
    print(f"\n{'mutant':{w}}  {'result':8}  detail")
    for m, verdict, detail in results:
        print(f"{m['name']:{w}}  {verdict:8}  {detail}")
    counts = {v: sum(1 for _, r, _ in results if r == v) for v in ("killed", "survived", "error")}
    print(f"\nlathe mutants: {counts['killed']} killed, {counts['survived']} survived, {counts['error']} errors "
          f"({time.time() - start:.0f} s)")
    return 2 if counts["error"] else 1 if counts["survived"] else 0


if __name__ == "__main__":
    sys.exit(main())
