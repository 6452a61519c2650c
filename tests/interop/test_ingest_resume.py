"""Crash safety: SIGKILL at any moment, or Ctrl-C, and the same command again ends with exactly the
samples (and bytes) of an uninterrupted run. Also: --part/--merge, --group-by and thread-count
independence."""
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures import LATHE, coco_source, lathe, read_dataset, rejects

ARGS = ["--size", "96", "--shard-size", "7", "--threads", "2"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    coco_source(root / "src", n=300, w=480, h=360, seed=2)
    (root / "src" / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\x00garbage")  # a reject, for rejects.jsonl
    with tarfile.open(root / "src.tar", "w") as t:
        t.add(root / "src", arcname="src")
    lathe("ingest", root / "src.tar", "-o", root / "ref", *ARGS)
    return root


def shard_table(ds):
    m = json.loads((Path(ds) / "manifest.json").read_text())
    return [(s["file"], s["split"], s["samples"], s["xxh64"]) for s in m["shards"]], m


def assert_same_dataset(ref, ds):
    ref_shards, ref_m = shard_table(ref)
    shards, m = shard_table(ds)
    assert m["complete"] and shards == ref_shards
    assert (Path(ds) / "rejects.jsonl").read_text() == (Path(ref) / "rejects.jsonl").read_text()
    _, a = read_dataset(ref)
    _, b = read_dataset(ds)
    assert len(a) == len(b)
    for x, y in zip(a, b):  # sample by sample
        assert x["meta"]["source"] == y["meta"]["source"]
        assert np.array_equal(x["image"], y["image"]) and np.array_equal(x["boxes"], y["boxes"])
    assert not [p for p in os.listdir(ds) if p.endswith(".tmp")]


def shards_on_disk(ds):
    return sum(1 for f in os.listdir(ds) if f.startswith("shard-") and f.endswith(".h5")) if ds.exists() else 0


def ingest_then_signal(src, ds, sig, more, delay, **popen):
    """Starts the ingest of src into ds and sends sig once it has written `more` shards beyond those already
    there, plus `delay` seconds: the moment follows the ingest's progress, not the clock, so it lands
    mid-ingest on a fast machine and a loaded one alike. Returns the process, signalled and waited for."""
    before = shards_on_disk(ds)
    p = subprocess.Popen([LATHE, "ingest", str(src), "-o", str(ds), *ARGS], **popen)
    while p.poll() is None and shards_on_disk(ds) < before + more:
        time.sleep(0.001)
    time.sleep(delay)
    p.send_signal(sig)
    return p


def incomplete(ds):
    return (ds / "manifest.json").exists() and not json.loads((ds / "manifest.json").read_text())["complete"]


def test_sigkill_at_several_points_then_resume(source):
    ds = source / "killed"
    interrupted = 0
    # right at a shard's commit (between its rename and the manifest, at times) and between commits
    for more, delay in ((1, 0), (3, 0.01), (2, 0), (5, 0.03), (4, 0.002)):
        p = ingest_then_signal(source / "src.tar", ds, signal.SIGKILL, more, delay, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p.wait()
        interrupted += incomplete(ds)
    assert interrupted >= 3, "the kills landed after the ingest: the test proved nothing"
    lathe("ingest", source / "src.tar", "-o", ds, *ARGS)
    assert_same_dataset(source / "ref", ds)


def test_ctrl_c_stops_cleanly_then_resumes(source):
    ds = source / "interrupted"
    p = ingest_then_signal(source / "src.tar", ds, signal.SIGINT, 2, 0, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "resume" in err
    assert incomplete(ds)
    assert not [f for f in os.listdir(ds) if f.endswith(".tmp")]
    lathe("ingest", source / "src.tar", "-o", ds, *ARGS)
    assert_same_dataset(source / "ref", ds)


def test_thread_count_does_not_change_the_bytes(source):
    # the reference ran on 2 workers; 1 and 8 write the same shards (8 workers on a 2-core machine
    # still split the work eight ways, and the writer puts their results back in input order)
    for threads in (1, 8):
        ds = source / f"threads-{threads}"
        lathe("ingest", source / "src.tar", "-o", ds, *ARGS[:-2], "--threads", threads)
        assert shard_table(ds)[0] == shard_table(source / "ref")[0], f"--threads {threads}"


def test_parts_merge_to_the_whole(source):
    parts = []
    for i in range(3):
        d = source / f"part{i}"
        lathe("ingest", source / "src.tar", "-o", d, *ARGS, "--part", f"{i}/3")
        parts.append(d)
    p = lathe("ingest", "--merge", "-o", source / "merged", *parts[:2], check=False)
    assert p.returncode == 1 and "missing" in p.stderr
    lathe("ingest", "--merge", "-o", source / "merged", *parts)
    _, whole = read_dataset(source / "ref")
    _, merged = read_dataset(source / "merged")
    key = lambda s: s["meta"]["source"]
    assert sorted(map(key, merged)) == sorted(map(key, whole))  # each sample exactly once
    split = {key(s): s["split"] for s in whole}
    assert all(split[key(s)] == s["split"] for s in merged)
    assert sum(1 for r in rejects(source / "merged") if r["reason"] == "not_in_labels") == 1  # reported once


def test_group_by_keeps_groups_in_one_split(tmp_path):
    coco_source(tmp_path / "src", n=60, w=64, h=48, sensors=False)
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", "32", "--group-by", r"img00([0-9])")
    _, samples = read_dataset(tmp_path / "ds")
    groups = {}
    for s in samples:
        g = s["meta"]["source"].decode()[len("images/img00")]
        groups.setdefault(g, set()).add(s["split"])
    assert all(len(v) == 1 for v in groups.values()), groups
    assert len({next(iter(v)) for v in groups.values()}) > 1  # and groups do land in different splits
