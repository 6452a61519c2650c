"""lathe's shards read by the tools people already use, and `lathe info` / `lathe verify` checked
against them: h5py + hdf5plugin read every dataset of a synth+ingest dataset (types, shapes, chunking,
offsets, label ranges, boxes inside the image and mapping back to the COCO source through /meta,
counts equal to `lathe info --json`); h5dump and plain h5py (no hdf5plugin, in a subprocess) read
the pixels through lathe's own filter plugin on HDF5_PLUGIN_PATH; `lathe verify` passes a clean
dataset and names the sample of a box moved outside its image, a changed checksum and a leftover."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers filter 32015 in this process only)
import numpy as np
import pytest

from fixtures import LATHE, lathe

SPLITS = ["train", "val", "test"]


def plugin_dir():
    d = os.environ.get("HDF5_PLUGIN_PATH") or str(Path(LATHE).resolve().parent / "plugins")
    assert (Path(d) / "liblathe_h5zstd.so").exists(), f"lathe's HDF5 plugin is not built in {d}"
    return d


def run_or_skip(*args):
    """Runs lathe; skips the module while the subcommand does not exist yet (exit 2, unknown command)."""
    p = lathe(*args, check=False)
    if p.returncode == 2 and "unknown command" in p.stderr:
        pytest.skip(f"`lathe {args[0]}` is not implemented in this build yet")
    assert p.returncode == 0, f"lathe {' '.join(map(str, args))} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader")
    run_or_skip("synth", root / "src", "--count", 12, "--seed", 3)
    run_or_skip("ingest", root / "src", "-o", root / "ds", "--size", 128, "--shard-size", 5)
    return root


def info_json(ds):
    p = lathe("info", ds, "--json")
    return json.loads(p.stdout)


def test_shards_read_with_h5py_agree_with_manifest_and_info(dataset):
    ds = dataset / "ds"
    manifest = json.loads((ds / "manifest.json").read_text())
    info = info_json(ds)
    classes = manifest["class_names"]
    nc = len(classes)
    h, w = manifest["image_size"]
    steps, channels = manifest["sensors"]["steps"], manifest["sensors"]["channels"]
    assert manifest["complete"] and info["complete"]
    assert info["samples"] == manifest["samples"] == sum(s["samples"] for s in manifest["shards"]) == 12
    assert len(manifest["shards"]) >= 3  # --shard-size 5 over 12 samples
    assert info["schema"]["store"] == "pixels" and info["schema"]["image_size"] == [128, 128]
    assert info["schema"]["sensors"]["channels"] == channels
    assert [c["name"] for c in info["classes"]] == classes

    coco = json.loads((dataset / "src" / "annotations.json").read_text())
    coco_boxes = {a["id"]: a for a in coco["annotations"]}
    box_counts = np.zeros((nc, 3), np.int64)
    image_counts = np.zeros((nc, 3), np.int64)
    unlabeled = np.zeros(3, np.int64)
    split_samples = np.zeros(3, np.int64)
    for sh, sh_info in zip(manifest["shards"], info["shards"]):
        path = ds / sh["file"]
        assert sh_info["file"] == sh["file"] and sh_info["bytes"] == sh["bytes"] == path.stat().st_size
        split = SPLITS.index(sh["split"])
        with h5py.File(path, "r") as f:
            n = sh["samples"]
            split_samples[split] += n
            assert int(f.attrs["lathe_schema"]) == 1
            assert [c.decode() if isinstance(c, bytes) else c for c in f.attrs["class_names"]] == classes
            assert list(f.attrs["image_size"]) == [h, w]

            images = f["images"]
            assert images.dtype == np.uint8 and images.shape == (n, h, w, 3)
            assert images.chunks == (1, h, w, 3) and "32015" in images._filters
            pixels = images[:]
            assert pixels.std() > 1  # not a blank image
            for i in range(n):  # each chunk one zstd frame with its content checksum (a flipped bit is caught)
                _, frame = images.id.read_direct_chunk((i, 0, 0, 0))
                assert frame[:4] == b"\x28\xb5\x2f\xfd" and frame[4] & 0x04, f"{sh['file']} image {i}: no checksum"

            off = f["box_offsets"][:]
            boxes, box_labels = f["boxes"][:], f["box_labels"][:]
            m = len(boxes)
            assert f["box_offsets"].dtype == np.int64 and off.shape == (n + 1,)
            assert off[0] == 0 and off[-1] == m and np.all(np.diff(off) >= 0)
            assert boxes.dtype == np.float32 and boxes.shape == (m, 4)
            assert box_labels.dtype == np.int32 and np.all((box_labels >= 0) & (box_labels < nc))
            assert f["box_flags"].dtype == np.uint8 and f["box_flags"].shape == (m,)
            assert f["box_ids"].shape == (m,) and f["box_areas"].shape == (m,)
            x1, y1, x2, y2 = boxes.T
            assert np.all((0 <= x1) & (x1 < x2) & (x2 <= w) & (0 <= y1) & (y1 < y2) & (y2 <= h))

            labels = f["labels"][:]
            assert labels.dtype == np.int32 and labels.shape == (n,)
            assert np.all((labels >= -1) & (labels < nc))

            meta = f["meta"][:]
            assert meta.shape == (n,) and np.all(meta["split"] == split)
            assert np.all(meta["scale_x"] > 0) and np.all(meta["orientation"] >= 1)

            sensors = f["sensors"]
            assert sensors.dtype == np.float32 and sensors.shape == (n, steps, len(channels))
            assert [c.decode() if isinstance(c, bytes) else c for c in sensors.attrs["channels"]] == channels
            texts = [t.decode("utf-8") for t in f["text"][:]]
            assert len(texts) == n and all(texts)

            ids, areas = f["box_ids"][:], f["box_areas"][:]
            for i in range(n):
                mrow = meta[i]
                for k in range(off[i], off[i + 1]):
                    # /meta maps every box back to the source pixels: x_source = (x - pad) / scale + tile
                    src = coco_boxes[int(ids[k])]
                    bx, by, bw, bh = src["bbox"]
                    back = [(boxes[k][0] - mrow["pad_x"]) / mrow["scale_x"] + mrow["tile_x"],
                            (boxes[k][1] - mrow["pad_y"]) / mrow["scale_y"] + mrow["tile_y"],
                            (boxes[k][2] - mrow["pad_x"]) / mrow["scale_x"] + mrow["tile_x"],
                            (boxes[k][3] - mrow["pad_y"]) / mrow["scale_y"] + mrow["tile_y"]]
                    np.testing.assert_allclose(back, [bx, by, bx + bw, by + bh], atol=0.01)
                    assert areas[k] == src["area"]
                    box_counts[box_labels[k], split] += 1
                if labels[i] < 0:
                    unlabeled[split] += 1
                else:
                    image_counts[labels[i], split] += 1

    for c, cls in enumerate(info["classes"]):
        assert [cls["boxes"][s] for s in SPLITS] == box_counts[c].tolist(), cls["name"]
        assert [cls["images"][s] for s in SPLITS] == image_counts[c].tolist(), cls["name"]
    assert [info["unlabeled"][s] for s in SPLITS] == unlabeled.tolist()
    assert [info["boxes"][s] for s in SPLITS] == box_counts.sum(0).tolist()
    assert [info["splits"][s] for s in SPLITS] == split_samples.tolist()
    assert info["bytes"] == sum(s["bytes"] for s in manifest["shards"])


PLAIN_H5PY = r"""
import hashlib, json, sys
import h5py
assert "hdf5plugin" not in sys.modules
out = {}
for path in sys.argv[1:]:
    with h5py.File(path, "r") as f:
        out[path] = [hashlib.sha256(f["images"][i].tobytes()).hexdigest() for i in range(len(f["images"]))]
        out[path + ":boxes"] = f["boxes"][:].tolist()
print(json.dumps(out))
"""


def test_plain_h5py_and_h5dump_read_through_lathe_plugin(dataset):
    ds = dataset / "ds"
    shards = sorted(str(p) for p in ds.glob("shard-*.h5"))
    plugins = plugin_dir()
    with_plugin = dict(os.environ, HDF5_PLUGIN_PATH=plugins)
    without = {k: v for k, v in os.environ.items() if k != "HDF5_PLUGIN_PATH"}

    # plain h5py in a fresh interpreter: lathe's plugin is the only zstd filter it can find
    p = subprocess.run([sys.executable, "-c", PLAIN_H5PY, *shards], capture_output=True, text=True, env=with_plugin)
    assert p.returncode == 0, p.stderr
    plain = json.loads(p.stdout)
    for path in shards:
        with h5py.File(path, "r") as f:  # hdf5plugin's zstd in this process
            want = [hashlib.sha256(f["images"][i].tobytes()).hexdigest() for i in range(len(f["images"]))]
            assert plain[path] == want
            assert plain[path + ":boxes"] == f["boxes"][:].tolist()
    # and without the plugin the same read fails: the pixels really went through lathe's filter
    p = subprocess.run([sys.executable, "-c", PLAIN_H5PY, shards[0]], capture_output=True, text=True, env=without)
    assert p.returncode != 0

    if not shutil.which("h5dump"):
        pytest.fail("h5dump is missing (apt-get install hdf5-tools)")
    p = subprocess.run(["h5dump", "-H", "-p", shards[0]], capture_output=True, text=True, env=with_plugin)
    assert p.returncode == 0, p.stderr
    assert 'DATASET "images"' in p.stdout and "32015" in p.stdout
    # a 1x2x3x3 corner of image 0, as h5dump prints it, equals what h5py reads
    p = subprocess.run(["h5dump", "-d", "/images", "-s", "0,40,50,0", "-c", "1,2,3,3", shards[0]],
                       capture_output=True, text=True, env=with_plugin)
    assert p.returncode == 0, p.stderr
    data = p.stdout.split("DATA {", 1)[1]
    values = [int(v) for line in data.splitlines() if "):" in line for v in re.findall(r"\d+", line.split("):", 1)[1])]
    with h5py.File(shards[0], "r") as f:
        assert values == f["images"][0, 40:42, 50:53, :].ravel().tolist()


def problems_of(p):
    report = json.loads(p.stdout)
    return report, [(q["file"], q["sample"], q["message"]) for q in report["problems"]]


def test_verify_passes_clean_and_names_damage(dataset, tmp_path):
    ds = dataset / "ds"
    p = lathe("verify", ds, "--json")
    report, problems = problems_of(p)
    assert report["ok"] and problems == [] and report["samples"] == 12
    assert "ok" in lathe("verify", ds).stdout

    bad = tmp_path / "bad"
    shutil.copytree(ds, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    target = None
    for sh in manifest["shards"]:  # the first sample with a box
        with h5py.File(bad / sh["file"], "r") as f:
            off = f["box_offsets"][:]
            rows = [i for i in range(len(off) - 1) if off[i + 1] > off[i]]
            if rows:
                target = (sh["file"], rows[0], int(off[rows[0]]))
                break
    assert target, "the synthetic dataset has no boxes"
    name, row, k = target
    with h5py.File(bad / name, "r+") as f:
        box = f["boxes"][k]
        box[2] = manifest["image_size"][1] + 7.5  # x2 past the right edge
        f["boxes"][k] = box
        del f["boxes"].attrs["xxh64"]  # a writer that made a bad box, not a flipped bit (test_checksums.py)
    (bad / ".open-train.h5.tmp").write_bytes(b"partial")

    p = lathe("verify", bad, "--json", check=False)
    assert p.returncode == 1, p.stderr
    report, problems = problems_of(p)
    assert not report["ok"]
    assert any(f == name and s == row and "box 0 outside the image" in m for f, s, m in problems), problems
    assert any(f == name and s is None and ("xxh64" in m or "bytes" in m) for f, s, m in problems), problems
    assert any(f == ".open-train.h5.tmp" and "leftover" in m for f, s, m in problems), problems
    text = lathe("verify", bad, check=False)
    assert text.returncode == 1
    assert f"lathe: verify: {name}: sample {row} box 0 outside the image" in text.stdout

    # --quick skips the checksums but still finds the box
    p = lathe("verify", bad, "--json", "--quick", check=False)
    assert p.returncode == 1
    _, problems = problems_of(p)
    assert any("outside the image" in m for _, _, m in problems)
    assert not any("xxh64" in m for _, _, m in problems)

    p = lathe("verify", tmp_path / "nothing-here", check=False)
    assert p.returncode == 1 and "lathe: error:" in p.stderr
    assert lathe("verify", check=False).returncode == 2
    assert lathe("info", ds, "--bogus", check=False).returncode == 2


def test_encoded_store_keeps_source_bytes(dataset, tmp_path):
    ds = tmp_path / "enc"
    lathe("ingest", dataset / "src", "-o", ds, "--store", "encoded", "--shard-size", 5)
    info = info_json(ds)
    assert info["schema"]["store"] == "encoded" and info["samples"] == 12
    manifest = json.loads((ds / "manifest.json").read_text())
    for sh in manifest["shards"]:
        with h5py.File(ds / sh["file"], "r") as f:
            assert "images" not in f
            for i in range(sh["samples"]):
                source = f["meta"][i]["source"].decode()
                assert bytes(f["encoded"][i]) == (dataset / "src" / source).read_bytes()
    p = lathe("verify", ds, "--json", check=False)
    report, problems = problems_of(p)
    assert p.returncode == 0 and report["ok"], problems
