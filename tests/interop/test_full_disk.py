"""A full disk and output sets (issue 18): a command that runs out of space exits 1 with the
system's reason ("No space left on device"), no crash and no HDF5 noise, and leaves earlier outputs
as they were; the rerun completes once there is room. Reports are replaced whole: a failed analyze
keeps the old report, a new one drops files the old one had, and a folder holding files lathe did
not write is refused. The full disk is a small tmpfs (needs root and a mount; skipped elsewhere)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from fixtures import LATHE, lathe, mount_tmpfs, output_files as files


@pytest.fixture
def disk(tmp_path):
    mnt = mount_tmpfs(tmp_path / "disk", "12m")
    yield mnt
    subprocess.run(["umount", "-l", mnt], capture_output=True)


def resize(mnt, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", mnt], check=True)


def fill(mnt, leave=60_000):
    """A file that leaves `leave` bytes free on the disk."""
    st = os.statvfs(mnt)
    with open(mnt / "filler", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(0, st.f_bavail * st.f_frsize - leave))


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("full_disk")
    lathe("synth", root / "src", "--count", 40)  # about 19 MB of shards at 640
    return root / "src"


def test_ingest_on_a_full_disk_says_why_and_resumes(disk, source):
    p = lathe("ingest", source, "-o", disk / "ds", check=False)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "No space left on device" in p.stderr, p.stderr
    assert not any(line.startswith("HDF5") for line in p.stderr.splitlines()), p.stderr
    assert not [f for f in os.listdir(disk / "ds") if f.endswith(".tmp")]  # no half-written shard left
    resize(disk, "64m")
    lathe("ingest", source, "-o", disk / "ds")
    assert "ok" in lathe("verify", disk / "ds").stdout


def test_a_report_is_replaced_whole_or_not_at_all(disk, source, tmp_path):
    lathe("ingest", source, "-o", tmp_path / "ds", "--size", 128)
    out = disk / "an"
    lathe("analyze", tmp_path / "ds", "-o", out)
    (out / "plots" / "stale.png").write_bytes(b"from an earlier analysis")
    before = files(out)
    fill(disk)
    p = lathe("analyze", tmp_path / "ds", "-o", out, check=False)
    assert p.returncode == 1 and "No space left on device" in p.stderr, p.stderr
    assert files(out) == before  # the old report, whole
    assert sorted(os.listdir(disk)) == ["an", "filler"]  # no temporaries beside it
    os.unlink(disk / "filler")
    lathe("analyze", tmp_path / "ds", "-o", out)
    assert not (out / "plots" / "stale.png").exists()  # the new set has only what the new run made
    assert {"analysis.json", "report.html", "report.md"} <= set(os.listdir(out))


def test_a_folder_of_other_files_is_never_swapped_away(tmp_path, source):
    lathe("ingest", source, "-o", tmp_path / "ds", "--size", 128)
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("mine")
    p = lathe("analyze", tmp_path / "ds", "-o", home, check=False)
    assert p.returncode == 1 and "holds files lathe did not write (thesis.tex" in p.stderr, p.stderr
    assert (home / "thesis.tex").read_text() == "mine"


def test_out_of_file_descriptors_is_said_not_taken_for_corruption(tmp_path, source):
    """EMFILE was reported as "not a readable HDF5 file (truncated or corrupt)" and analyze listed the
    samples as corrupt. Now the reader keeps fewer shards open under a low `ulimit -n`, and where even
    that is not enough the error says so."""
    import resource
    lathe("ingest", source, "-o", tmp_path / "ds", "--size", 64, "--shard-size", 2)  # 20 shards

    def limit(n):
        return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))

    p = subprocess.run([LATHE, "analyze", tmp_path / "ds", "-o", tmp_path / "an12"], capture_output=True, text=True,
                       preexec_fn=limit(12))
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "an12" / "analysis.json").read_text())["findings"]["corrupt"]["count"] == 0
    p = subprocess.run([LATHE, "analyze", tmp_path / "ds", "-o", tmp_path / "an5"], capture_output=True, text=True,
                       preexec_fn=limit(5))
    assert p.returncode == 1 and "Too many open files" in p.stderr, p.stderr
    assert "corrupt" not in p.stderr


def test_train_eval_and_predict_on_a_full_disk_say_why_and_keep_what_was_there(disk, source, tmp_path):
    """Each writes through lathe_write_atomic or an output set: on a full disk it exits 1 with the
    system's reason, a run, report or prediction written before stays byte for byte, and the rerun
    completes once there is room."""
    spec = Path(__file__).resolve().parents[2] / "experiments" / "ci" / "detect.yaml"
    lathe("ingest", source, "-o", tmp_path / "ds", "--size", 64)
    resize(disk, "64m")
    train = (spec, f"data.dataset={tmp_path / 'ds'}", "model.input=[3,64,64]", "model.width=0.0625", "train.epochs=1",
             "--runs", disk, "--threads", "1")
    lathe("train", *train, "--name", "r")
    lathe("eval", disk / "r", "--split", "val")
    lathe("predict", disk / "r", "--dataset", tmp_path / "ds", "-o", disk / "pred")
    before = files(disk)
    fill(disk, leave=20_000)  # a config fits, a checkpoint does not
    checks = [("train", *train, "--name", "r2"), ("eval", disk / "r", "--split", "test"),
              ("predict", disk / "r", "--dataset", tmp_path / "ds", "--split", "test", "-o", disk / "pred")]
    for args in checks:
        p = lathe(*args, check=False)
        assert p.returncode == 1 and "No space left on device" in p.stderr, (args[0], p.returncode, p.stderr)
        assert "Traceback" not in p.stderr and not any(line.startswith("HDF5") for line in p.stderr.splitlines())
    os.unlink(disk / "filler")
    after = files(disk)
    assert {k: v for k, v in after.items() if k.parts[0] != "r2"} == before  # nothing earlier changed
    assert not [p for p in disk.rglob("*") if p.name.endswith(".tmp") or ".new-" in p.name]
    lathe("train", *train, "--name", "r2", "--overwrite")
    lathe("eval", disk / "r", "--split", "test")
    lathe("predict", disk / "r", "--dataset", tmp_path / "ds", "--split", "test", "-o", disk / "pred")
    assert json.loads((disk / "r" / "eval" / "report.json").read_text())["split"] == "test"
