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
    t0 = time.monotonic()
    lathe("ingest", root / "src.tar", "-o", root / "ref", *ARGS)
    (root / "ref-seconds").write_text(str(time.monotonic() - t0))  # kill points scale with the build's speed
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


def test_sigkill_at_several_points_then_resume(source):
    ds = source / "killed"
    interrupted = 0
    whole = float((source / "ref-seconds").read_text())
    for share in (0.2, 0.35, 0.5, 0.3, 0.45, 0.6, 0.8):
        p = subprocess.Popen([LATHE, "ingest", str(source / "src.tar"), "-o", str(ds), *ARGS],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(share * whole)
        p.send_signal(signal.SIGKILL)
        p.wait()
        if (ds / "manifest.json").exists() and not json.loads((ds / "manifest.json").read_text())["complete"]:
            interrupted += 1
    assert interrupted >= 2, "the kills all landed before or after the ingest: the test proved nothing"
    lathe("ingest", source / "src.tar", "-o", ds, *ARGS)
    assert_same_dataset(source / "ref", ds)


def test_ctrl_c_stops_cleanly_then_resumes(source):
    whole = float((source / "ref-seconds").read_text())
    for share in (0.4, 0.25, 0.6, 0.15):
        ds = source / f"interrupted-{share}"
        p = subprocess.Popen([LATHE, "ingest", str(source / "src.tar"), "-o", str(ds), *ARGS],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(share * whole)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        if p.returncode != 0 and (ds / "manifest.json").exists():
            break
    else:
        pytest.fail("Ctrl-C never landed during the ingest")
    assert p.returncode == 130, err
    assert "resume" in err
    assert not json.loads((ds / "manifest.json").read_text())["complete"]
    assert not [f for f in os.listdir(ds) if f.endswith(".tmp")]
    lathe("ingest", source / "src.tar", "-o", ds, *ARGS)
    assert_same_dataset(source / "ref", ds)


def test_thread_count_does_not_change_the_bytes(source):
    ds = source / "one-thread"
    lathe("ingest", source / "src.tar", "-o", ds, *ARGS[:-2], "--threads", "1")
    assert shard_table(ds)[0] == shard_table(source / "ref")[0]


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
