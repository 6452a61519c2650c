"""Real Slurm jobs on a one-node cluster the test starts itself (tests/slurm/cluster.sh: Debian's
munge and slurm-wlm, stopped again at the end), through the templates users submit
(experiments/slurm/): an ingest job array with a dependent merge, a 2-task training job whose
weights equal one process's, and a job stopped before its time limit that requeues itself and
ends with the uninterrupted run's weights (issue 17)."""
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from fixtures import LATHE, lathe
from test_distributed import digits, mpi_built  # noqa: F401 (digits: the module fixture, shared)

ROOT = Path(__file__).resolve().parents[2]
SLURM = ROOT / "experiments" / "slurm"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if not mpi_built():
        pytest.skip("a lathe built without MPI (make deps installs libopenmpi-dev)")
    folder = tmp_path_factory.mktemp("slurm")
    p = subprocess.run([ROOT / "tests" / "slurm" / "cluster.sh", "start", folder], capture_output=True, text=True)
    if p.returncode == 77:
        pytest.skip(p.stderr.strip())
    assert p.returncode == 0, p.stderr
    # the jobs find lathe through LATHE (the templates' variable) and run with this environment
    env = dict(os.environ, SLURM_CONF=str(folder / "slurm.conf"), LATHE=LATHE, CPUS="1",
               OMPI_MCA_btl_vader_single_copy_mechanism="none",
               ASAN_OPTIONS=":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"])))
    yield folder, env
    subprocess.run([ROOT / "tests" / "slurm" / "cluster.sh", "stop", folder], check=True)


def job_state(env, job):
    out = subprocess.run(["scontrol", "show", "job", str(job)], capture_output=True, text=True, env=env).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    return fields.get("JobState"), fields


def wait_done(env, job, timeout=400):
    """Waits for a job (requeues included) to end; returns its last state."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state, fields = job_state(env, job)
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return state
        if fields.get("Reason") in ("DependencyNeverSatisfied", "PartitionConfig"):
            return f"{state} ({fields['Reason']})"
        time.sleep(0.5)
    raise AssertionError(f"job {job} still {state} after {timeout} s")


def test_an_ingest_array_and_its_merge(cluster, tmp_path):
    folder, env = cluster
    lathe("synth", tmp_path / "a.tar.zst", "--count", 60, "--seed", 2, "--width", 96, "--height", 96)
    p = subprocess.run([SLURM / "ingest_array.sh", tmp_path / "a.tar.zst", tmp_path / "ds", "3", "--", "--size", "64"],
                       capture_output=True, text=True, env=env, check=True)
    array, merge = p.stdout.split()[2], p.stdout.split()[6].rstrip(",")
    assert wait_done(env, merge) == "COMPLETED", (tmp_path / "ds.logs" / "merge.log").read_text()
    for i in range(3):  # the array's tasks: each its own part
        assert job_state(env, f"{array}_{i}")[0] == "COMPLETED"
    lathe("verify", tmp_path / "ds")
    lathe("ingest", tmp_path / "a.tar.zst", "-o", tmp_path / "whole", "--size", 64)
    info = json.loads(lathe("info", tmp_path / "ds", "--json").stdout)
    whole = json.loads(lathe("info", tmp_path / "whole", "--json").stdout)
    assert info["samples"] == whole["samples"] == 60


def test_a_two_task_training_job_gives_one_process_weights(cluster, digits, tmp_path):
    folder, env = cluster
    env = dict(env, RUNS=str(tmp_path / "runs"))
    subprocess.run(["sbatch", "--wait", "-n", "2", "-o", tmp_path / "job.log", SLURM / "train_cpu.sbatch",
                    digits / "spec.yaml"], check=True, capture_output=True, env=env)
    lathe("train", digits / "spec.yaml", "--runs", tmp_path / "one", "--threads", 1)
    a = load_file(tmp_path / "one" / "nobn" / "checkpoints" / "last.safetensors")
    b = load_file(tmp_path / "runs" / "nobn" / "checkpoints" / "last.safetensors")
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-5, err_msg=k)
    log = (tmp_path / "job.log").read_text()
    assert log.count("epoch 3/3: loss") == 1, log  # rank 0 reports, once


EPOCHS = 150


def test_a_job_stopped_before_its_time_limit_requeues_and_ends_as_an_uninterrupted_one(cluster, digits, tmp_path):
    folder, env = cluster
    ref = dict(env, RUNS=str(tmp_path / "ref"))
    # an epoch of the digits takes ~0.07 s: 150 of them leave the signal ~10 s to arrive mid-run (12
    # left under one second, and a loaded machine's scancel sometimes came after the last epoch)
    subprocess.run(["sbatch", "--wait", "-n", "2", "-o", tmp_path / "ref.log", SLURM / "train_cpu.sbatch",
                    digits / "spec.yaml", f"train.epochs={EPOCHS}"], check=True, capture_output=True, env=ref)
    env = dict(env, RUNS=str(tmp_path / "runs"))
    job = subprocess.run(["sbatch", "--parsable", "-n", "2", "-o", tmp_path / "job.log", SLURM / "train_cpu.sbatch",
                          digits / "spec.yaml", f"train.epochs={EPOCHS}"], check=True, capture_output=True, text=True,
                         env=env).stdout.strip()
    log = tmp_path / "runs" / "nobn" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text()):
        time.sleep(0.05)
    # what --signal=USR1@120 does before the time limit (and a preemption's SIGTERM): every task signalled
    subprocess.run(["scancel", "--signal=USR1", job], check=True, env=env)
    assert wait_done(env, job) == "COMPLETED"  # requeued by the template, resumed (Slurm waits 2 min to restart it)
    _, fields = job_state(env, job)
    assert fields["Restarts"] == "1"
    text = (tmp_path / "job.log").read_text()
    assert "requeueing job" in text and text.count(f"epoch {EPOCHS}/{EPOCHS}: loss") == 1, text
    a = load_file(tmp_path / "ref" / "nobn" / "checkpoints" / "last.safetensors")
    b = load_file(tmp_path / "runs" / "nobn" / "checkpoints" / "last.safetensors")
    for k in a:  # the same two ranks: the same sums, bit for bit
        assert np.array_equal(a[k], b[k]), k
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    assert [e["epoch"] for e in lines] == list(range(1, EPOCHS + 1))  # no epoch logged twice across the restart
