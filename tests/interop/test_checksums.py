"""Silent corruption (issue 18), in two layers. Every reader hashes a shard's bytes against the
manifest's xxh64 before libhdf5 first reads it, so a flipped bit anywhere in the file (in HDF5's own
structures too, where libhdf5 can crash) is an error naming the shard in every command. Under that,
every small dataset of a shard (boxes, box labels/flags/ids/areas/offsets, labels, meta, sensors,
text) carries an xxh64 attribute that every reader checks, which names the dataset too: the tests of
that layer re-seal the manifest after flipping the bit, as a file corrupted before its whole-file
hash was taken would be. Checkpoints carry a content hash, checked on load."""
import json
import os
import shutil
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest
import xxhash
from PIL import Image

from fixtures import lathe, reseal_shard
from test_detect import write_spec

SMALL = ["boxes", "box_labels", "box_flags", "box_ids", "box_areas", "box_offsets", "labels", "meta", "sensors", "text"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("checksums")
    lathe("synth", root / "src", "--count", 40)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 64)
    with h5py.File(root / "ds" / "shard-00000.h5", "r") as f:
        chunks = {n: (f[n].id.get_chunk_info(0).byte_offset, f[n].id.get_chunk_info(0).size) for n in SMALL}
        assert all("xxh64" in f[n].attrs for n in SMALL)  # h5py sees the attribute too
    return root, chunks


def flip_bit(root, tmp_path, offset, reseal, bit=0x08):
    """A copy of the dataset with one bit of its shard flipped at offset; with reseal the manifest's
    xxh64 is brought up to date with the changed file, so only the per-dataset hashes can notice."""
    ds = tmp_path / "ds"
    shutil.copytree(root / "ds", ds)
    shard = ds / "shard-00000.h5"
    data = bytearray(shard.read_bytes())
    data[offset] ^= bit
    shard.write_bytes(data)
    if reseal:
        reseal_shard(ds, "shard-00000.h5")
    return ds


def flipped(root, chunks, name, tmp_path, at=0.5):
    off, size = chunks[name]
    return flip_bit(root, tmp_path, off + int((size - 1) * at), reseal=True)


def test_the_manifest_hash_is_xxh64_of_the_file(dataset):
    """What the readers compare (and what the re-sealing above writes) is XXH64, seed 0, of the bytes."""
    root, _ = dataset
    manifest = json.loads((root / "ds" / "manifest.json").read_text())
    data = (root / "ds" / "shard-00000.h5").read_bytes()
    assert manifest["shards"][0]["xxh64"] == xxhash.xxh64_hexdigest(data)


def spread_offsets(size, count=24):
    """Offsets over the whole file: its first 4 KiB (superblock, root group, object headers) densely,
    then evenly to the last byte."""
    head = [0, 9, 40, 100, 300, 700, 1100, 1600, 2300, 3100, 4000]
    return sorted(set(head + [4096 + (size - 4097) * k // (count - len(head)) for k in range(count - len(head) + 1)]))


def test_a_flipped_bit_anywhere_in_a_shard_is_an_error_naming_it(dataset, tmp_path):
    """Whether the bit lands in a dataset, in an image chunk, in HDF5's own structures or in bytes no
    reader looks at, analyze (which reads everything a shard holds) reports the shard as changed and
    exits 3; nothing crashes, nothing passes silently."""
    root, _ = dataset
    size = (root / "ds" / "shard-00000.h5").stat().st_size
    for offset in spread_offsets(size):
        run = tmp_path / f"at{offset}"
        ds = flip_bit(root, run, offset, reseal=False)
        p = lathe("analyze", ds, "-o", run / "an", "--fail-on", "corrupt", check=False)
        assert p.returncode == 3, (offset, p.returncode, p.stderr[-2000:])
        errors = json.loads((run / "an" / "analysis.json").read_text())["findings"]["corrupt"]["errors"]
        assert errors and all("shard-00000.h5" in e["message"] and "changed after ingest" in e["message"]
                              for e in errors), (offset, errors[:2])
        shutil.rmtree(run)


def test_train_and_eval_refuse_a_changed_shard(dataset, tmp_path):
    """A bit of HDF5's own structures (the root group's object header, early in the file): training
    and evaluation stop with the shard's name before libhdf5 reads the file; verify says the same and
    still looks inside."""
    root, _ = dataset
    spec = write_spec(tmp_path / "spec.yaml", root / "ds", epochs=1)
    lathe("train", spec, "--runs", tmp_path / "runs", "--name", "r", "model.classes=8")
    ds = flip_bit(root, tmp_path / "bad", 300, reseal=False)
    p = lathe("train", write_spec(tmp_path / "bad.yaml", ds, epochs=1), "--runs", tmp_path / "runs", "--name", "b",
              "model.classes=8", check=False)
    assert p.returncode == 1 and "shard-00000.h5" in p.stderr and "changed after ingest" in p.stderr, p.stderr
    p = lathe("eval", tmp_path / "runs" / "r", "--dataset", ds, "-o", tmp_path / "ev", check=False)
    assert p.returncode == 1 and "shard-00000.h5" in p.stderr and "changed after ingest" in p.stderr, p.stderr
    p = lathe("verify", ds, check=False)
    assert p.returncode != 0 and "the file changed after ingest" in p.stdout + p.stderr, (p.stdout, p.stderr)


def test_verify_lists_a_crash_inside_hdf5_as_a_problem(dataset, tmp_path):
    """One bit of the size of the first object in the shard's global heap (where the class names,
    texts and source paths live): libhdf5 1.10 reads past its buffer and crashes (RELIABILITY.md,
    finding 7; `lathe verify` itself died of SIGSEGV on this file before stop 47). verify looks
    inside a changed shard in a child process: it exits 1 listing the change, what it found inside
    before the crash, and the crash."""
    root, _ = dataset
    heap = (root / "ds" / "shard-00000.h5").read_bytes().find(b"GCOL")
    assert heap > 0, "the shard has no global heap collection"
    ds = flip_bit(root, tmp_path, heap + 24, reseal=False, bit=0x80)
    p = lathe("verify", ds, "--json", check=False, timeout=300)
    assert p.returncode == 1, (p.returncode, p.stderr[-2000:])
    messages = [q["message"] for q in json.loads(p.stdout)["problems"]]
    assert any("the file changed after ingest" in m for m in messages), messages
    inside = [m for m in messages if m.startswith("looking inside the changed file")]
    assert all("crashed the HDF5 library" in m or "exited with status" in m for m in inside), inside
    p = lathe("analyze", ds, "-o", tmp_path / "an", "--fail-on", "corrupt", check=False, timeout=300)
    assert p.returncode == 3, (p.returncode, p.stderr[-2000:])  # readers refuse it before HDF5 sees it


def test_verify_stops_a_loop_inside_hdf5(tmp_path):
    """A shard on which libhdf5 1.10 loops for ever (H5HG__protect on a damaged global heap, finding
    8; data/heap-loop-shard.h5 is the input fuzz_shard found, with the harness's manifest and a stale
    hash): verify stops looking inside when the child makes no progress for --inspect-timeout
    seconds, lists that and exits 1 (before stop 47 it hung)."""
    ds = tmp_path / "ds"
    ds.mkdir()
    shard = Path(__file__).parent / "data" / "heap-loop-shard.h5"
    shutil.copy(shard, ds / "shard-00000.h5")
    manifest = {"lathe_schema": 1, "created_by": "fuzz", "complete": True, "store": "pixels",
                "image_size": [16, 16], "channels": 3,
                "class_names": ["good", "scratch", "dent", "crack", "missing_hole", "bearing_wear", "overheating"],
                "masks": False, "text": True,
                "sensors": {"steps": 4, "channels": ["vib_x", "vib_y", "vib_z", "temperature", "current"]},
                "source_format": "coco", "args": {}, "samples": 3, "rejected": 0,
                "shards": [{"file": "shard-00000.h5", "split": "train", "samples": 3,
                            "bytes": shard.stat().st_size, "xxh64": "0000000000000000"}],
                "resume": {"train": 3, "val": 0, "test": 0}}
    (ds / "manifest.json").write_text(json.dumps(manifest))
    p = lathe("verify", ds, "--inspect-timeout", "2", check=False, timeout=120)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "the file changed after ingest" in p.stdout and "made no progress for 2 s" in p.stdout, p.stdout
    p = lathe("analyze", ds, "-o", tmp_path / "an", "--fail-on", "corrupt", check=False, timeout=120)
    assert p.returncode == 3, (p.returncode, p.stderr)


@pytest.mark.parametrize("name", SMALL)
def test_a_flipped_bit_in_any_dataset_is_an_error_naming_it(dataset, tmp_path, name):
    root, chunks = dataset
    for at in (0.0, 0.5, 1.0):
        run = tmp_path / f"at{at}"
        ds = flipped(root, chunks, name, run, at)
        p = lathe("analyze", ds, "-o", run / "an", "--fail-on", "corrupt", check=False)
        assert p.returncode == 3, (name, at, p.returncode, p.stderr)
        errors = json.loads((run / "an" / "analysis.json").read_text())["findings"]["corrupt"]["errors"]
        assert errors and all("shard-00000.h5" in e["message"] and f"/{name}" in e["message"] for e in errors), errors[:2]


def assert_checksummed_frames(shard, names):
    """Each dataset's first chunk is a zstd frame whose header sets the content checksum flag."""
    with h5py.File(shard, "r") as f:
        for name in names:
            _, frame = f[name].id.read_direct_chunk((0,) * f[name].ndim)
            assert frame[:4] == b"\x28\xb5\x2f\xfd", name
            assert frame[4] & 0x04, f"/{name}: zstd frame without its content checksum"


def test_every_small_chunk_is_a_zstd_frame_with_its_checksum(dataset):
    """The frame checksum is what refuses a corrupt /text or /meta chunk before libhdf5 follows the
    variable-length references in it (RELIABILITY.md, finding 11)."""
    root, _ = dataset
    assert_checksummed_frames(root / "ds" / "shard-00000.h5", SMALL)


def test_frames_keep_their_checksum_beside_another_zstd_plugin(tmp_path):
    """With hdf5plugin's zstd filter (the same id, 32015) on HDF5_PLUGIN_PATH, as users set it for
    h5py, lathe still writes with its own filter, the one that checksums its frames."""
    lathe("synth", tmp_path / "src", "--count", 8)
    env = dict(os.environ, HDF5_PLUGIN_PATH=hdf5plugin.PLUGIN_PATH)
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", 32, env=env)
    assert_checksummed_frames(tmp_path / "ds" / "shard-00000.h5", ("text", "meta", "labels"))


@pytest.mark.parametrize("name", ["labels", "boxes"])
def test_training_stops_at_a_corrupt_shard(dataset, tmp_path, name):
    root, chunks = dataset
    ds = flipped(root, chunks, name, tmp_path)
    spec = write_spec(tmp_path / "spec.yaml", ds, epochs=1)
    p = lathe("train", spec, "--runs", tmp_path / "runs", "--name", "r", "model.classes=8", check=False)
    assert p.returncode == 1 and "shard-00000.h5" in p.stderr and f"/{name}" in p.stderr, p.stderr


def test_a_changed_checkpoint_is_refused(dataset, tmp_path):
    root, _ = dataset
    spec = write_spec(tmp_path / "spec.yaml", root / "ds", epochs=1)
    lathe("train", spec, "--runs", tmp_path / "runs", "--name", "r", "model.classes=8")
    last = tmp_path / "runs" / "r" / "checkpoints" / "last.safetensors"
    data = bytearray(last.read_bytes())
    data[-3] ^= 0x01  # one bit of the last weight
    last.write_bytes(data)
    p = lathe("eval", tmp_path / "runs" / "r", "--checkpoint", "last", check=False)
    assert p.returncode == 1 and "last.safetensors" in p.stderr and "content hash" in p.stderr, p.stderr


def test_readers_check_labels_and_splits_against_the_manifest(dataset, tmp_path):
    """Not a flipped bit but a writer's mistake or an edited manifest: an image label outside the
    classes, or a shard listed under another split than its samples were made for, is an error."""
    root, _ = dataset
    bad = tmp_path / "labels"
    shutil.copytree(root / "ds", bad)
    with h5py.File(bad / "shard-00000.h5", "r+") as f:
        labels = f["labels"][:]
        labels[0] = 99
        f["labels"][:] = labels
        del f["labels"].attrs["xxh64"]
    reseal_shard(bad, "shard-00000.h5")  # a writer's mistake, sealed as its own
    p = lathe("analyze", bad, "-o", tmp_path / "an1", "--fail-on", "corrupt", check=False)
    assert p.returncode == 3, p.stderr
    errors = json.loads((tmp_path / "an1" / "analysis.json").read_text())["findings"]["corrupt"]["errors"]
    assert "/labels: sample 0 has label 99, outside the manifest's" in errors[0]["message"], errors[0]

    moved = tmp_path / "splits"
    shutil.copytree(root / "ds", moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    first = manifest["shards"][0]
    first["split"] = "test" if first["split"] != "test" else "val"
    (moved / "manifest.json").write_text(json.dumps(manifest))
    p = lathe("analyze", moved, "-o", tmp_path / "an2", "--fail-on", "corrupt", check=False)
    errors = json.loads((tmp_path / "an2" / "analysis.json").read_text())["findings"]["corrupt"]["errors"]
    assert p.returncode == 3 and "but the manifest lists the shard under" in errors[0]["message"], (p.stderr, errors[:1])
    # info describes rather than refuses: its split counts are the manifest's, and it says they disagree
    # with the samples' own (it printed them as if all were well)
    samples = first["samples"]
    info = json.loads(lathe("info", moved, "--json").stdout)
    assert info["split_mismatches"] == samples and info["invalid_labels"] == 0, info
    text = lathe("info", moved).stdout
    assert f"warning: {samples} samples whose /meta split is not the one the manifest lists their shard under" in text
    assert json.loads(lathe("info", root / "ds", "--json").stdout)["split_mismatches"] == 0


def test_readers_refuse_a_shard_listed_twice_and_say_an_ingest_is_unfinished(dataset, tmp_path):
    """A manifest that lists one shard twice was read twice by train, eval, info and analyze (exit 0,
    its samples counted double); only verify said so. A manifest with a bogus count of 2^36 samples
    in a shard made verify walk every one of them (minutes); it now skips the bad shard whole. A
    dataset whose ingest has not finished is read with a warning that says so."""
    root, _ = dataset
    twice = tmp_path / "twice"
    shutil.copytree(root / "ds", twice)
    manifest = json.loads((twice / "manifest.json").read_text())
    manifest["shards"].append(dict(manifest["shards"][0]))
    (twice / "manifest.json").write_text(json.dumps(manifest))
    for cmd in (["info", twice], ["analyze", twice, "-o", tmp_path / "an"]):
        p = lathe(*cmd, check=False)
        assert p.returncode == 1 and "lists shard shard-00000.h5 twice" in p.stderr, (cmd, p.stderr)
    p = lathe("verify", twice, check=False)
    assert p.returncode == 1 and "are both shard-00000.h5" in p.stdout + p.stderr
    huge = tmp_path / "huge"
    shutil.copytree(root / "ds", huge)
    manifest = json.loads((huge / "manifest.json").read_text())
    manifest["shards"][0]["samples"] = 2 ** 36
    (huge / "manifest.json").write_text(json.dumps(manifest))
    p = lathe("verify", huge, check=False, timeout=60)
    assert p.returncode == 1, p.stdout
    unfinished = tmp_path / "unfinished"
    shutil.copytree(root / "ds", unfinished)
    manifest = json.loads((unfinished / "manifest.json").read_text())
    manifest["complete"] = False
    (unfinished / "manifest.json").write_text(json.dumps(manifest))
    p = lathe("analyze", unfinished, "-o", tmp_path / "an3")
    assert "its ingest has not finished" in p.stderr


def test_verify_reads_each_reject_line(tmp_path):
    """rejects.jsonl is checked line by line, not only counted: as many lines of garbage passed."""
    rng = np.random.default_rng(3)
    (tmp_path / "src" / "a").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "src" / "a" / f"{i}.png")
    (tmp_path / "src" / "a" / "bad.png").write_bytes(b"\x89PNG not really")
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", 16, "--format", "folders")
    lathe("verify", tmp_path / "ds")
    (tmp_path / "ds" / "rejects.jsonl").write_text("garbage\n")
    p = lathe("verify", tmp_path / "ds", check=False)
    assert p.returncode == 1 and "rejects.jsonl line 1 is not a reject record" in p.stdout + p.stderr
