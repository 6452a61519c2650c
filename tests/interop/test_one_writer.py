"""One writer per folder (issue 18): every command that writes a folder holds an flock on
FOLDER/.lathe.lock while it writes. A second writer fails at once (exit 1) with a message naming the
folder and the holder's pid and command line, and leaves the first's output intact; a killed writer
never blocks the next one. The holder is simulated with Python's flock on the same file (the
protocol), and two real processes race for an ingest and a training."""
import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fixtures import LATHE, lathe
from test_detect import shapes_source, write_spec

HOLDER = "4242 lathe fake-holder --for the test"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A COCO source, its dataset, two --part datasets, a trained 1-epoch detector run, its detections."""
    root = tmp_path_factory.mktemp("one_writer")
    gt = shapes_source(root / "src", 24, 2, seed=3)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 64, "--split", "1,0,0")
    for i in range(2):
        lathe("ingest", root / "src", "-o", root / f"part{i}", "--size", 64, "--split", "1,0,0", "--part", f"{i}/2")
    spec = write_spec(root / "spec.yaml", root / "ds", epochs=1)
    lathe("train", spec, "--runs", root / "runs", "--name", "a", "--threads", 2)
    lathe("predict", root / "runs" / "a", "--dataset", root / "ds", "--split", "train", "-o", root / "pred")
    return {"root": root, "gt": gt, "spec": spec, "dets": root / "pred" / "detections.json"}


class held:
    """Holds FOLDER's lock as another process would (a pid and command line in the file)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.folder / ".lathe.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(self.fd, 0)
        os.write(self.fd, (HOLDER + "\n").encode())
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def snapshot(folder):
    """Every file under folder but the lock, with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.name != ".lathe.lock"}


def commands(w, tmp):
    r, root = w["root"], w["root"]
    run = root / "runs" / "a"
    return {
        "ingest": (tmp / "ds2", ["ingest", root / "src", "-o", tmp / "ds2", "--size", 64]),
        "ingest-resume": (root / "ds", ["ingest", root / "src", "-o", root / "ds", "--size", 64, "--split", "1,0,0"]),
        "merge": (tmp / "merged", ["ingest", "--merge", "-o", tmp / "merged", root / "part0", root / "part1"]),
        "train": (tmp / "runs" / "b", ["train", w["spec"], "--runs", tmp / "runs", "--name", "b"]),
        "train-resume": (run, ["train", "--resume", "--name", "a", "--runs", root / "runs"]),
        "train-overwrite": (run, ["train", w["spec"], "--runs", root / "runs", "--name", "a", "--overwrite"]),
        "analyze": (tmp / "an", ["analyze", root / "ds", "-o", tmp / "an"]),
        "eval": (tmp / "ev", ["eval", run, "--dataset", root / "ds", "--split", "train", "-o", tmp / "ev"]),
        "eval-detections": (tmp / "evd", ["eval", "--detections", w["dets"], "--gt", w["gt"], "-o", tmp / "evd"]),
        "predict": (tmp / "pr", ["predict", run, root / "src" / "images", "-o", tmp / "pr"]),
    }


@pytest.mark.parametrize("name", ["ingest", "ingest-resume", "merge", "train", "train-resume", "train-overwrite",
                                  "analyze", "eval", "eval-detections", "predict"])
def test_a_second_writer_fails_at_once_and_names_the_holder(world, tmp_path, name):
    folder, args = commands(world, tmp_path)[name]
    before = snapshot(folder) if Path(folder).exists() else {}
    with held(folder):
        t0 = time.monotonic()
        p = lathe(*args, check=False)
        took = time.monotonic() - t0
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"{folder} is being written by pid 4242 (lathe fake-holder --for the test)" in p.stderr, p.stderr
    assert "one writer per folder" in p.stderr
    assert took < 20  # at once: before the work, not after it
    assert snapshot(folder) == before  # the holder's folder is untouched


def wait_for_lock(folder, pid, proc, timeout=60):
    """Until folder's lock file names pid (the process holds the lock), or the process ended."""
    lock = Path(folder) / ".lathe.lock"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if lock.exists() and lock.read_text().startswith(f"{pid} "):
            return True
        time.sleep(0.01)
    return False


def test_two_real_ingests_into_one_folder(tmp_path):
    shapes_source(tmp_path / "src", 160, 2, seed=4)
    out = tmp_path / "ds"
    first = subprocess.Popen([LATHE, "ingest", tmp_path / "src", "-o", out, "--size", "256", "--threads", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for_lock(out, first.pid, first), "the first ingest never held the lock"
    second = lathe("ingest", tmp_path / "src", "-o", out, "--size", 256, check=False)
    assert first.wait(timeout=300) == 0, first.communicate()
    if "being written" not in second.stderr:  # the first finished before the second started: nothing to race
        pytest.skip("the first ingest ended before the second began")
    assert second.returncode == 1 and f"pid {first.pid} ({LATHE} ingest" in second.stderr, second.stderr
    assert "ok" in lathe("verify", out).stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and sum(s["samples"] for s in manifest["shards"]) == 160


def test_a_live_training_refuses_a_second_train_resume_and_overwrite(world, tmp_path):
    spec = write_spec(tmp_path / "long.yaml", world["root"] / "ds", epochs=400)
    runs = tmp_path / "runs"
    first = subprocess.Popen([LATHE, "train", spec, "--runs", runs, "--name", "live", "--threads", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_lock(runs / "live", first.pid, first), first.communicate()
        for args in (["train", spec, "--runs", runs, "--name", "live"],
                     ["train", "--resume", "--name", "live", "--runs", runs],
                     ["train", spec, "--runs", runs, "--name", "live", "--overwrite"]):
            p = lathe(*args, check=False)
            assert p.returncode == 1 and f"pid {first.pid}" in p.stderr and "one writer per folder" in p.stderr, \
                (args, p.stderr)
        assert first.poll() is None, "the live training was disturbed"
    finally:
        first.send_signal(signal.SIGTERM)  # checkpoint and stop
        first.wait(timeout=120)
    assert (runs / "live" / "config.yaml").exists()


def test_a_killed_writer_does_not_block_the_next(world, tmp_path):
    shapes_source(tmp_path / "src", 160, 2, seed=6)
    out = tmp_path / "ds"
    first = subprocess.Popen([LATHE, "ingest", tmp_path / "src", "-o", out, "--size", "256", "--threads", "1"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for_lock(out, first.pid, first)
    first.kill()
    # killed while it wrote, not after it finished: its dataset is unfinished
    assert first.wait() == -signal.SIGKILL
    assert not (out / "manifest.json").exists() or not json.loads((out / "manifest.json").read_text())["complete"]
    assert (out / ".lathe.lock").read_text().startswith(f"{first.pid} ")  # the file stays; the lock went with it
    p = lathe("ingest", tmp_path / "src", "-o", out, "--size", 256)
    assert p.returncode == 0
    assert "ok" in lathe("verify", out).stdout


def test_analyze_stops_on_sigint_even_when_a_script_ignored_it(tmp_path):
    """A script's background job starts with SIGINT ignored; analyze and eval used to run on. Now they
    stop at once (exit 130) and the earlier report stays whole; the next run clears what was left."""
    shapes_source(tmp_path / "src", 400, 2, seed=8)
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", 256)
    out = tmp_path / "an"
    lathe("analyze", tmp_path / "ds", "-o", out)
    before = snapshot(out)
    p = subprocess.Popen([LATHE, "analyze", tmp_path / "ds", "-o", out, "--threads", "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert wait_for_lock(out, p.pid, p)
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=30)
    if rc == 0:
        pytest.skip("the analysis ended before the signal")
    assert rc == 130, p.stderr.read()
    assert snapshot(out) == before
    lathe("analyze", tmp_path / "ds", "-o", out)
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".an.new-")]  # the killed run's stage is gone
