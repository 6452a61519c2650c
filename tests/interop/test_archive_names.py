"""Names that are not ASCII come through every packaging of a source alike: a folder, a GNU tar, a
pax tar and a zip written by Python's zipfile, which flags such names as UTF-8 (bit 11). Until
2026-12-07 libarchive, converting a flagged name into lathe's C locale, handed back no name at all:
the zip's images were rejected as "entry without a name" and their class was gone, exit 0."""
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from fixtures import image_array, lathe, read_dataset, rejects

FILES = ["train/Äpfel/é.png", "train/Äpfel/grüne Äpfel 2.png", "train/apple/a.png", "val/apple/b.png",
         "val/Äpfel/日本.png", "test/crème brûlée/x.png"]


def png_bytes(rng):
    out = io.BytesIO()
    Image.fromarray(image_array(rng, 24, 20)).save(out, "PNG")
    return out.getvalue()


def package(tmp_path, kind, members):
    if kind == "folder":
        root = tmp_path / "src"
        for name, data in members:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return root
    if kind == "zip":
        path = tmp_path / "src.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members:
                z.writestr(name, data)
        return path
    path = tmp_path / f"src-{kind}.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT if kind == "gnu-tar" else tarfile.PAX_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("kind", ["folder", "gnu-tar", "pax-tar", "zip"])
def test_non_ascii_names_ingest_from_every_packaging(tmp_path, kind):
    rng = np.random.default_rng(7)
    members = [(name, png_bytes(rng)) for name in FILES]
    src = package(tmp_path, kind, members)
    if kind == "zip":  # the case that lost its names: the zip carries the UTF-8 flag
        with zipfile.ZipFile(src) as z:
            assert all(i.flag_bits & 0x800 for i in z.infolist() if not i.filename.isascii())
    ds = tmp_path / "ds"
    lathe("ingest", src, "-o", ds, "--size", 32, "--format", "folders")
    assert rejects(ds) == []
    manifest = json.loads((ds / "manifest.json").read_text())
    assert sorted(manifest["class_names"]) == sorted(["Äpfel", "apple", "crème brûlée"])
    _, samples = read_dataset(ds)
    got = sorted((s["meta"]["source"].decode(), s["split"]) for s in samples)
    assert got == sorted((name, name.split("/")[0]) for name in FILES)
    names = manifest["class_names"]
    for s in samples:
        assert names[int(s["label"])] == s["meta"]["source"].decode().split("/")[1]
