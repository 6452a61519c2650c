"""Every kind of bad input is skipped with its reason in rejects.jsonl, and no good sample is lost."""
import gzip
import io
import json
import os
import resource
import struct
import subprocess
import tarfile
import zipfile
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


def yolo_members(rng, n=3):
    """n good YOLO samples: (name, bytes) archive members with their data.yaml."""
    members = [("data.yaml", b"names: ['cat']\n")]
    for i in range(n):
        members += [(f"images/train/g{i}.jpg", jpeg_bytes(image_array(rng, 64, 48))),
                    (f"labels/train/g{i}.txt", b"0 0.5 0.5 0.2 0.2\n")]
    return members


def tar_bytes(members, fmt=tarfile.GNU_FORMAT):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("packing", ["tar", "tar.gz", "zip"])
def test_an_archive_that_breaks_off_keeps_the_entries_before(tmp_path, packing):
    """A download cut short: the good samples before the break are ingested and the break is a
    damaged_entry naming the entry after which nothing could be read. Until 2026-12-07 the whole run
    failed ("damaged archive: Truncated input file"), no dataset written."""
    rng = np.random.default_rng(11)
    members = yolo_members(rng) + [("images/train/last.jpg", jpeg_bytes(image_array(rng, 64, 48)) * 40)]
    if packing == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in members:
                z.writestr(name, data)
        data = buf.getvalue()
        cut = data.find(b"PK\x03\x04", data.find(b"images/train/last.jpg") - 40) + 200  # inside last.jpg
    else:
        data = tar_bytes(members)
        cut = data.find(b"images/train/last.jpg") + 512 + 3000  # the header whole, the data cut
    data = data[:cut]
    if packing == "tar.gz":
        data = gzip.compress(data)
    src = tmp_path / f"cut.{packing}"
    src.write_bytes(data)
    p = lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    manifest, samples = read_dataset(tmp_path / "ds")
    assert sorted(s["meta"]["source"].decode() for s in samples) == [f"images/train/g{i}.jpg" for i in range(3)]
    got = rejects(tmp_path / "ds")
    assert got and all(r["reason"] == "damaged_entry" and r["path"] == "images/train/last.jpg" for r in got), got
    assert any("breaks off after this entry" in r["detail"] for r in got), got
    assert "rejected" in p.stdout
    # a file that is no archive from its first header on is still an error, not an empty dataset
    (tmp_path / "junk.tar").write_bytes(b"\x01\x02 not an archive" * 100)
    p = lathe("ingest", tmp_path / "junk.tar", "-o", tmp_path / "junk", check=False)
    assert p.returncode == 1


def test_damaged_headers_are_one_reject_and_names_are_canonical_utf8(tmp_path):
    """A member whose data libarchive reads as a run of damaged headers (a regular file named "./")
    is one damaged_entry, not one per header it skips; a//b.jpg and a/./b.jpg are the a/b.jpg an
    extractor would write (duplicate_entry, not extra samples); a name that is not UTF-8 (a GNU tar
    of Latin-1 names) is stored with U+FFFD for its bad bytes, so rejects.jsonl stays JSON and the
    shards' UTF-8 strings decode."""
    rng = np.random.default_rng(12)
    good = yolo_members(rng)
    odd = [("./", jpeg_bytes(image_array(rng, 64, 48))),
           ("images/train//g1.jpg", good[3][1]), ("images/train/./g2.jpg", good[5][1]),
           ("images/train/caf\udce9.jpg", jpeg_bytes(image_array(rng, 64, 48))),
           ("labels/train/caf\udce9.txt", b"0 0.5 0.5 0.2 0.2\n"),
           ("other/bad\udcff\udcfe.jpg", jpeg_bytes(image_array(rng, 64, 48)))]
    (tmp_path / "odd.tar").write_bytes(tar_bytes(good + odd))
    lathe("ingest", tmp_path / "odd.tar", "-o", tmp_path / "ds", "--size", 32)
    lines = (tmp_path / "ds" / "rejects.jsonl").read_bytes().decode("utf-8").splitlines()
    got = [json.loads(line) for line in lines]
    reasons = sorted((r["path"], r["reason"]) for r in got)
    assert ("images/train/g1.jpg", "duplicate_entry") in reasons and ("images/train/g2.jpg", "duplicate_entry") in reasons
    assert ("other/bad\ufffd\ufffd.jpg", "not_in_labels") in reasons
    assert sum(r["reason"] == "damaged_entry" for r in got) == 1, got
    _, samples = read_dataset(tmp_path / "ds")
    assert sorted(s["meta"]["source"].decode() for s in samples) == sorted(
        [f"images/train/g{i}.jpg" for i in range(3)] + ["images/train/caf\ufffd.jpg"])


@pytest.mark.parametrize("packing", ["folder", "tar"])
def test_an_entry_of_exactly_the_limit_is_kept(tmp_path, packing):
    """--max-entry-bytes N rejects entries larger than N: one of exactly N bytes is kept from an
    archive as from a folder (the archive reader refused it when its buffer filled at N)."""
    rng = np.random.default_rng(13)
    members = yolo_members(rng)
    image = members[1][1]
    members[1] = (members[1][0], image + b"\0" * (65536 - len(image)))  # bytes after the JPEG's end
    if packing == "tar":
        (tmp_path / "src.tar").write_bytes(tar_bytes(members))
        src = tmp_path / "src.tar"
    else:
        src = tmp_path / "src"
        for name, data in members:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(data)
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32, "--max-entry-bytes", 65536)
    assert rejects(tmp_path / "ds") == []
    lathe("ingest", src, "-o", tmp_path / "small", "--size", 32, "--max-entry-bytes", 65535)
    assert [r["reason"] for r in rejects(tmp_path / "small")] == ["entry_too_large"]


def test_label_files_past_their_sum_cap_fail_the_run_clearly(tmp_path):
    """Label files are held in memory while the source is scanned, so an archive of many that each
    pass --max-entry-bytes' check (a bomb of YOLO labels) could take all the memory. Their sum is
    capped (--max-label-bytes, 4 GiB by default): past it the run fails naming the file and the
    option, keeping no partial dataset, and a rerun with room completes."""
    rng = np.random.default_rng(21)
    members = [("data.yaml", b"names: [a]\n")]
    for k in range(12):
        members.append((f"images/train/i{k}.jpg", jpeg_bytes(image_array(rng, 32, 24))))
        members.append((f"labels/train/i{k}.txt", b"0 0.5 0.5 0.2 0.2\n" + b" " * 1000))
    tar_with(tmp_path / "src.tar", members)
    p = lathe("ingest", tmp_path / "src.tar", "-o", tmp_path / "ds", "--size", 32, "--max-label-bytes", 10000,
              check=False)
    assert p.returncode == 1, p.stderr
    assert "label files pass 10000 bytes in all at labels/train/i9.txt (--max-label-bytes" in p.stderr, p.stderr
    assert not (tmp_path / "ds" / "manifest.json").exists()
    lathe("ingest", tmp_path / "src.tar", "-o", tmp_path / "ds", "--size", 32, "--max-label-bytes", 12 * 1020)
    samples = read_dataset(tmp_path / "ds")[1]
    assert len(samples) == 12 and all(len(s["boxes"]) == 1 for s in samples) and rejects(tmp_path / "ds") == []
    assert lathe("ingest", tmp_path / "src.tar", "-o", tmp_path / "x", "--max-label-bytes", 0, check=False).returncode == 2


@pytest.mark.skipif(os.environ.get("LATHE_SANITIZE", "0") != "0", reason="sanitizers reserve more address space than the cap")
def test_a_label_file_too_large_for_memory_says_so(tmp_path):
    """A 90 MB COCO file of 30 million empty lists (a 90 KB zip) needs ~2 GB as a cJSON tree: under
    a 1.5 GB address-space cap ingest exits 1 saying it ran out of memory for that file, where it
    said "invalid JSON near byte N" of a valid file."""
    rng = np.random.default_rng(14)
    coco = {"images": [{"id": 1, "file_name": "g.jpg", "width": 64, "height": 48}], "categories": [{"id": 1, "name": "c"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10]}]}
    text = json.dumps(coco)[:-1].encode() + b', "x": [' + b"[]," * 30_000_000 + b"[]]}"
    with zipfile.ZipFile(tmp_path / "big.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("annotations/instances_train.json", text)
        z.writestr("train/g.jpg", jpeg_bytes(image_array(rng, 64, 48)))
    cap = lambda: resource.setrlimit(resource.RLIMIT_AS, (1500 << 20, 1500 << 20))  # noqa: E731
    p = lathe("ingest", tmp_path / "big.zip", "-o", tmp_path / "ds", "--threads", 1, check=False, preexec_fn=cap)
    assert p.returncode == 1 and "instances_train.json: out of memory for its JSON tree" in p.stderr, p.stderr


def test_a_sparse_entry_reads_as_its_zeros(tmp_path):
    """A GNU tar of sparse files (tar --sparse): an entry that is all hole comes back from libarchive
    as no bytes at all, which lathe rejected as empty_file; its bytes are zeros, as tar extracts them
    and Python's tarfile reads them (no image format: unsupported_format), and a JPEG followed by a
    hole is a sample. A truly empty file is still empty_file."""
    rng = np.random.default_rng(14)
    src = tmp_path / "src"
    members = yolo_members(rng) + [("labels/train/hole.txt", b"0 0.5 0.5 0.2 0.2\n"),
                                   ("labels/train/tail.txt", b"0 0.5 0.5 0.2 0.2\n"),
                                   ("labels/train/empty.txt", b"0 0.5 0.5 0.2 0.2\n"),
                                   ("images/train/empty.jpg", b"")]
    for name, data in members:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(data)
    with open(src / "images/train/hole.jpg", "wb") as f:
        f.truncate(8192)
    tail = jpeg_bytes(image_array(rng, 64, 48))
    with open(src / "images/train/tail.jpg", "wb") as f:
        f.write(tail)
        f.truncate(len(tail) + 65536)
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "--format=gnu", "-cf", tar, "-C", src, "."], check=True)
    with tarfile.open(tar) as t:
        sparse = {m.name.lstrip("./"): m for m in t.getmembers() if m.issparse()}
        if "images/train/hole.jpg" not in sparse:
            pytest.skip("this file system keeps no holes, so tar stored no sparse entry")
        assert len(t.extractfile(sparse["images/train/hole.jpg"]).read()) == 8192
    lathe("ingest", tar, "-o", tmp_path / "ds", "--size", 32)
    got = {r["path"]: r["reason"] for r in rejects(tmp_path / "ds")}
    assert got == {"images/train/hole.jpg": "unsupported_format", "images/train/empty.jpg": "empty_file"}, got
    _, samples = read_dataset(tmp_path / "ds")
    assert "images/train/tail.jpg" in {s["meta"]["source"].decode() for s in samples}
