"""Every kind of bad input is skipped with its reason in rejects.jsonl, and no good sample is lost."""
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from fixtures import coco_source, jpeg_bytes, image_array, lathe, read_dataset, rejects, tar_with


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side=30000):
    """A valid 1-bit PNG of side x side pixels that compresses to about 100 KB."""
    raw = zlib.compress(b"\x00" * ((side + 7) // 8 + 1) * side, 9)
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    src = root / "src"
    images, anns = coco_source(src, n=12, w=160, h=120, seed=5)
    rng = np.random.default_rng(9)
    good = jpeg_bytes(image_array(rng, 160, 120))
    bad_files = {
        "corrupt.jpg": b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 3000, dtype=np.uint8)),
        "trunc.jpg": good[: len(good) // 2],
        "empty.jpg": b"",
        "fake.jpg": b"GIF89a" + bytes(100),
        "pic.gif": b"GIF89a" + bytes(100),
        "bomb.png": png_bomb(),
    }
    for name, data in bad_files.items():
        (src / "images" / name).write_bytes(data)
    coco = json.loads((src / "annotations.json").read_text())
    next_id = 1000
    for name in list(bad_files) + ["missing.jpg", "outside.jpg", "negative.jpg"]:
        next_id += 1
        coco["images"].append({"id": next_id, "file_name": name, "width": 160, "height": 120})
    (src / "images" / "outside.jpg").write_bytes(good)
    (src / "images" / "negative.jpg").write_bytes(good)
    coco["annotations"] += [
        {"id": 5001, "image_id": 1008, "category_id": 1, "bbox": [150, 100, 50, 50]},   # outside.jpg
        {"id": 5002, "image_id": 1009, "category_id": 1, "bbox": [10, 10, -5, 10]},     # negative.jpg
        {"id": 5003, "image_id": 1009, "category_id": 1, "bbox": [20, 20, 10, 10]},     # a good box beside it
        {"id": 5004, "image_id": 1, "category_id": 9, "bbox": [1, 1, 5, 5]},            # unknown category
        {"id": 1, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},               # duplicate id 1
    ]
    (src / "annotations.json").write_text(json.dumps(coco))
    # sensors: NaN (kept by default) and garbage (rejected)
    (src / "sensors" / "img0001.csv").write_text("t,vib_x,temperature\n" + "".join(f"{t},nan,20\n" for t in range(16)))
    (src / "sensors" / "img0002.csv").write_text("t,vib_x,temperature\n" + "".join(f"{t},abc,20\n" for t in range(16)))
    # the tar adds what a folder cannot hold: traversal, absolute names, links, devices, duplicates
    members = [(str(p.relative_to(src)), p.read_bytes()) for p in sorted(src.rglob("*")) if p.is_file()]
    members += [("../evil.jpg", good), ("/abs.jpg", good), ("images/link.jpg", "symlink"),
                ("images/dev.jpg", "chr"), ("images/hard.jpg", "hardlink"), ("images/img0004.jpg", good)]
    tar_with(root / "hostile.tar", members)
    return root


EXPECTED = {
    ("images/corrupt.jpg", "corrupt_image"), ("images/trunc.jpg", "corrupt_image"), ("images/empty.jpg", "empty_file"),
    ("images/fake.jpg", "unsupported_format"), ("images/pic.gif", "unsupported_format"),
    ("images/bomb.png", "too_many_pixels"), ("missing.jpg", "missing_file"),
    ("images/outside.jpg", "box_outside_image"),  # clipped under the default policy: not a reject
    ("images/negative.jpg", "box_negative_size"), ("img0000.jpg", "unknown_category"),
    ("annotations.json", "duplicate_annotation_id"), ("images/img0002.jpg", "bad_sensor_csv"),
    ("../evil.jpg", "unsafe_path"), ("/abs.jpg", "unsafe_path"), ("images/link.jpg", "not_regular_file"),
    ("images/dev.jpg", "not_regular_file"), ("images/hard.jpg", "not_regular_file"),
    ("images/img0004.jpg", "duplicate_entry"),
}


def test_each_reject_reason_and_no_good_sample_lost(hostile):
    ds = hostile / "ds"
    p = lathe("ingest", hostile / "hostile.tar", "-o", ds, "--size", "64", "--shard-size", "4")
    got = {(r["path"], r["reason"]) for r in rejects(ds)}
    expected = EXPECTED - {("images/outside.jpg", "box_outside_image")}
    assert got == expected, f"unexpected: {got - expected}, missing: {expected - got}"
    manifest, samples = read_dataset(ds)
    sources = sorted(s["meta"]["source"].decode() for s in samples)
    # 12 good images minus img0002 (bad sensors), plus outside.jpg (clipped) and negative.jpg (box dropped)
    want = sorted([f"images/img{i:04d}.{'png' if i % 4 == 3 else 'jpg'}" for i in range(12) if i != 2]
                  + ["images/outside.jpg", "images/negative.jpg"])
    assert sources == want
    by_source = {s["meta"]["source"].decode(): s for s in samples}
    assert np.isnan(by_source["images/img0001.jpg"]["sensors"][:, 0]).all()  # NaN kept, visible
    neg = by_source["images/negative.jpg"]
    assert len(neg["boxes"]) == 1  # the negative box dropped, its neighbour kept
    out = by_source["images/outside.jpg"]["boxes"]
    assert len(out) == 1 and out[0][2] <= 64 and out[0][3] <= 64
    assert "rejected" in p.stdout and manifest["rejected"] == len(expected)


def test_strict_exits_4_and_box_policy_reject(hostile):
    ds = hostile / "strict"
    p = lathe("ingest", hostile / "hostile.tar", "-o", ds, "--size", "64", "--strict", "--box-policy", "reject",
              "--sensor-nan", "reject", check=False)
    assert p.returncode == 4, p.stderr
    got = {(r["path"], r["reason"]) for r in rejects(ds)}
    assert ("images/outside.jpg", "box_outside_image") in got
    assert ("images/negative.jpg", "box_negative_size") in got
    assert ("images/img0001.jpg", "nan_sensor_values") in got
    _, samples = read_dataset(ds)
    sources = {s["meta"]["source"].decode() for s in samples}
    assert "images/outside.jpg" not in sources and "images/img0001.jpg" not in sources


def test_entry_size_limit(hostile):
    ds = hostile / "small"
    lathe("ingest", hostile / "hostile.tar", "-o", ds, "--size", "64", "--max-entry-bytes", "4000", check=False)
    reasons = [r["reason"] for r in rejects(ds)]
    assert "entry_too_large" in reasons
    assert "empty_file" not in reasons[:-1] or reasons.count("empty_file") == 1  # only the truly empty file


def test_rerun_of_a_complete_dataset_changes_nothing(hostile):
    ds = hostile / "again"
    lathe("ingest", hostile / "hostile.tar", "-o", ds, "--size", "64")
    before = (ds / "manifest.json").read_text()
    p = lathe("ingest", hostile / "hostile.tar", "-o", ds, "--size", "64")
    assert "already complete" in p.stdout
    assert (ds / "manifest.json").read_text() == before
    p = lathe("ingest", hostile / "hostile.tar", "-o", ds, "--size", "96", check=False)
    assert p.returncode == 1 and "other arguments" in p.stderr


def test_bad_usage_exits_2(tmp_path):
    for args in (["--size", "0"], ["--split", "0.5,0.5,0.5"], ["--part", "3/2"], ["--format", "nope"], []):
        p = lathe("ingest", tmp_path, "-o", tmp_path / "x", *args, check=False) if args else lathe("ingest", check=False)
        assert p.returncode == 2, (args, p.stderr)


def test_malformed_annotation_file_is_a_clear_error(tmp_path):
    coco_source(tmp_path / "src", n=3)
    (tmp_path / "src" / "annotations.json").write_text('{"images": [ {"id": 1,, }')
    p = lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", check=False)
    assert p.returncode == 1
    assert "annotations.json" in p.stderr and "invalid JSON" in p.stderr
