"""Every error says why (issue 18), one errno at a time: EIO from a dying disk (at a shard's writes,
and at the fsync that every durable write of lathe ends with), EROFS (a read-only mount) and EACCES
(a folder the user may not write, a shard the user may not read). Each command exits 1 with the
system's reason and the path, prints no HDF5 error stack, leaves no temporaries and no half-written
output, and keeps what an earlier run wrote. EIO comes from tests/interop/failio.c, an LD_PRELOAD
shim built here; EROFS needs root and a tmpfs mount; EACCES needs a user the permissions bind (as
root the commands run as nobody through setpriv)."""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fixtures import LATHE, lathe, mount_tmpfs, output_files as files

HERE = Path(__file__).resolve().parent
SPEC = HERE.parents[1] / "experiments" / "ci" / "detect.yaml"


@pytest.fixture(scope="module")
def failio(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        pytest.skip("no C compiler to build the failio shim")
    so = tmp_path_factory.mktemp("failio") / "failio.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", so, HERE / "failio.c", "-ldl"], check=True)
    preload = [str(so)]
    # A sanitized lathe needs its sanitizer runtime first in the preload list.
    ldd = subprocess.run(["ldd", LATHE], capture_output=True, text=True).stdout
    preload = [line.split("=>")[1].split()[0] for line in ldd.splitlines() if "libasan" in line and "=>" in line] + preload
    return ":".join(preload)


def run_failing(preload, calls, *args, path="", after=0):
    env = dict(os.environ, LD_PRELOAD=preload, FAILIO_CALLS=calls, FAILIO_PATH=path, FAILIO_AFTER=str(after),
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    return subprocess.run([LATHE, *map(str, args)], capture_output=True, text=True, env=env)


def says(p, reason):
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert reason in p.stderr, p.stderr
    assert not any(line.startswith("HDF5") for line in p.stderr.splitlines()), p.stderr


def leftovers(folder):
    return [p for p in Path(folder).rglob("*") if p.name.endswith(".tmp") or ".new-" in p.name]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A source, its dataset, a one-epoch detector run and an analysis, all written normally."""
    root = tmp_path_factory.mktemp("io_errors")
    lathe("synth", root / "src", "--count", 30)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 64)
    train = (SPEC, f"data.dataset={root / 'ds'}", "model.input=[3,64,64]", "model.width=0.0625", "train.epochs=1",
             "--runs", root / "runs", "--threads", "1")
    lathe("train", *train, "--name", "r")
    lathe("eval", root / "runs" / "r", "--split", "val")
    lathe("analyze", root / "ds", "-o", root / "an")
    return root, train


@pytest.mark.parametrize("after", [0, 3, 25])
def test_eio_while_ingest_writes_a_shard(failio, world, tmp_path, after):
    root, _ = world
    out = tmp_path / "ds"
    p = run_failing(failio, "pwrite", "ingest", root / "src", "-o", out, "--size", 64, path=".h5", after=after)
    says(p, "Input/output error")
    assert str(out) in p.stderr
    assert not leftovers(out) and not list(out.glob("*.h5"))
    lathe("ingest", root / "src", "-o", out, "--size", 64)  # the disk is well again: the rerun completes
    assert "ok" in lathe("verify", out).stdout


def test_eio_at_fsync_keeps_every_earlier_output(failio, world):
    """fsync is where a disk's write-back error reaches a program; every durable write of lathe
    (lathe_write_atomic, output sets, checkpoints, merged shards) ends with one."""
    root, train = world
    before_an, before_runs = files(root / "an"), files(root / "runs")
    checks = [("analyze", root / "ds", "-o", root / "an"),
              ("eval", root / "runs" / "r", "--split", "test"),
              ("predict", root / "runs" / "r", "--dataset", root / "ds", "-o", root / "runs" / "pred"),
              ("train", *train, "--name", "r2"),
              ("train", *train, "--name", "r", "--overwrite")]
    for args in checks:
        p = run_failing(failio, "fsync", *args)
        says(p, "Input/output error")
    assert files(root / "an") == before_an
    assert {k: v for k, v in files(root / "runs").items() if k.parts[0] == "r"} == before_runs
    assert not leftovers(root)
    lathe("analyze", root / "ds", "-o", root / "an")  # and each works again on a good disk
    lathe("eval", root / "runs" / "r", "--split", "test")


@pytest.fixture
def read_only(tmp_path):
    mnt = mount_tmpfs(tmp_path / "ro", "8m")
    (mnt / "an").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
    yield mnt
    subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_erofs_is_said_for_every_writer(world, read_only):
    root, train = world
    checks = [("ingest", root / "src", "-o", read_only / "ds", "--size", 64),
              ("analyze", root / "ds", "-o", read_only / "an"),
              ("analyze", root / "ds", "-o", read_only / "an2"),
              ("train", *train[:-4], "--runs", read_only, "--threads", "1", "--name", "r"),
              ("predict", root / "runs" / "r", "--dataset", root / "ds", "-o", read_only / "pred"),
              ("eval", root / "runs" / "r", "--split", "val", "-o", read_only / "ev")]
    for args in checks:
        p = lathe(*args, check=False)
        says(p, "Read-only file system")
        assert str(read_only) in p.stderr, p.stderr


def as_user(*args):
    """Runs lathe as a user that file permissions bind: nobody when we are root."""
    pre = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("root without setpriv: permissions do not bind root")
        pre = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    return subprocess.run([*pre, LATHE, *map(str, args)], capture_output=True, text=True)


def test_eacces_is_said_not_taken_for_corruption(world):
    root, _ = world
    # outside pytest's (and make test's TMPDIR's) folders, which only their owner may enter
    base = Path(tempfile.mkdtemp(prefix="lathe-eacces-", dir="/tmp"))
    if any(not (p.stat().st_mode & 0o001) for p in base.parents):
        shutil.rmtree(base)
        pytest.skip("/tmp is not open to other users here")
    try:
        base.chmod(0o755)
        shutil.copytree(root / "src", base / "src")
        shutil.copytree(root / "ds", base / "ds")
        (base / "out").mkdir()
        (base / "locked").mkdir()
        for p in [base, *base.rglob("*")]:
            p.chmod(0o777 if p.is_dir() else 0o666)
        (base / "locked").chmod(0o555)
        for args in [("ingest", base / "src", "-o", base / "locked" / "ds", "--size", 64),
                     ("analyze", base / "ds", "-o", base / "locked" / "an")]:
            p = as_user(*args)
            says(p, "Permission denied")
            assert str(base / "locked") in p.stderr, p.stderr
        (base / "ds" / "shard-00000.h5").chmod(0o000)
        for args in [("info", base / "ds"), ("analyze", base / "ds", "-o", base / "out" / "an")]:
            p = as_user(*args)
            says(p, "Permission denied")
            assert "shard-00000.h5" in p.stderr and "corrupt" not in p.stderr, p.stderr
        assert not (base / "out" / "an" / "analysis.json").exists()
    finally:
        shutil.rmtree(base, ignore_errors=True)
