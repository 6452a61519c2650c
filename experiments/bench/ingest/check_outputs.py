#!/usr/bin/env python3
"""check_outputs.py - checks that what the ingest benchmark's contenders wrote is readable and right.

Each OUTPUT is an HDF5 file written by a peer (/images [N, S, S, 3], images in sorted file-name order)
or a lathe dataset folder (shard-*.h5, matched to the sources by the file name in /meta's `source`).
Every file is opened with h5py and hdf5plugin, as a user would. For a few images spread over the set,
the stored pixels are compared with a reference made by Pillow from the source (full-size decode, EXIF
orientation, antialiased bilinear resize, letterbox padded with 114): the padding must be exact and
the picture within a mean absolute difference of --tolerance (decoders at a reduced DCT scale and
different resamplers differ slightly, a wrong picture differs by tens).

Usage: check_outputs.py IMAGES_DIR OUTPUT [OUTPUT ...] [--size S] [--samples K] [--tolerance T]
Prints one line per output and exits 1 if any check fails.
"""
import argparse
import glob
import os
import sys

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter with h5py)
import numpy as np
from PIL import Image, ImageOps

PAD = 114
EXTENSIONS = (".jpg", ".jpeg", ".png")


def reference(path, size):
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        s = min(size / im.width, size / im.height)
        nw = min(size, max(1, int(im.width * s + 0.5)))
        nh = min(size, max(1, int(im.height * s + 0.5)))
        x0, y0 = (size - nw) // 2, (size - nh) // 2
        if im.size != (nw, nh):
            im = im.resize((nw, nh), Image.BILINEAR)
        canvas = np.full((size, size, 3), PAD, np.uint8)
        canvas[y0:y0 + nh, x0:x0 + nw] = np.asarray(im)
        mask = np.zeros((size, size), bool)
        mask[y0:y0 + nh, x0:x0 + nw] = True
    return canvas, mask


def lathe_rows(folder):
    """File name -> (shard path, row) for every sample of a lathe dataset."""
    rows = {}
    for shard in sorted(glob.glob(os.path.join(folder, "shard-*.h5"))):
        with h5py.File(shard, "r") as f:
            for i, src in enumerate(f["meta"]["source"]):
                name = src.decode() if isinstance(src, bytes) else str(src)
                rows[os.path.basename(name)] = (shard, i)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images")
    ap.add_argument("outputs", nargs="+")
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--tolerance", type=float, default=4.0)
    args = ap.parse_args()

    names = sorted(n for n in os.listdir(args.images) if n.lower().endswith(EXTENSIONS))
    if not names:
        sys.exit(f"check_outputs: no images in {args.images}")
    picks = sorted({round(k * (len(names) - 1) / max(1, args.samples - 1)) for k in range(args.samples)})
    refs = {i: reference(os.path.join(args.images, names[i]), args.size) for i in picks}
    failed = False
    for out in args.outputs:
        problems, worst = [], 0.0
        try:
            if os.path.isdir(out):
                rows = lathe_rows(out)
                if len(rows) != len(names):
                    problems.append(f"{len(rows)} samples for {len(names)} images")
                def read(i):
                    shard, row = rows[names[i]]
                    with h5py.File(shard, "r") as f:
                        return f["images"][row]
            else:
                with h5py.File(out, "r") as f:
                    if f["images"].shape != (len(names), args.size, args.size, 3):
                        problems.append(f"/images has shape {f['images'].shape}")
                def read(i):
                    with h5py.File(out, "r") as f:
                        return f["images"][i]
            for i in picks:
                got = read(i)
                want, inside = refs[i]
                if got.shape != want.shape:
                    problems.append(f"{names[i]}: shape {got.shape}")
                    continue
                if not np.array_equal(got[~inside], want[~inside]):
                    problems.append(f"{names[i]}: padding is not {PAD}")
                mad = float(np.abs(got[inside].astype(np.int16) - want[inside]).mean())
                worst = max(worst, mad)
                if mad > args.tolerance:
                    problems.append(f"{names[i]}: mean abs difference {mad:.2f}")
        except (OSError, KeyError, ValueError) as e:
            problems.append(f"{type(e).__name__}: {e}")
        status = "ok" if not problems else "FAIL: " + "; ".join(problems[:4])
        print(f"check {out}: {len(picks)} images, worst mean abs diff {worst:.2f}: {status}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
