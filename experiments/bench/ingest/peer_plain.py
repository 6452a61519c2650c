#!/usr/bin/env python3
"""peer_plain.py - the plain Python way to do what `lathe ingest --store pixels --size S` does.

Workers (multiprocessing.Pool, one per core) read each image with Pillow at full size, apply the EXIF
orientation, resize it with bilinear filtering so it fits S x S and letterbox it (centred, padded with
114); the parent receives the pixel arrays in order and writes them to one HDF5 file with h5py into a
uint8 [N, S, S, 3] dataset chunked one image per chunk and compressed by hdf5plugin's Zstd filter
(HDF5 filter 32015, level 1): the library's filter pipeline compresses, in the parent.

Usage: peer_plain.py IMAGES_DIR OUT.h5 [--threads N] [--size S] [--level L]
Prints one line with the image count, seconds and images/s (measured inside the process).
"""
import argparse
import os
import sys
import time
from multiprocessing import Pool

import h5py
import hdf5plugin
import numpy as np
from PIL import Image, ImageOps

PAD = 114
EXTENSIONS = (".jpg", ".jpeg", ".png")


def letterbox_geometry(w, h, size):
    """Content size and offset of a w x h image letterboxed into size x size (as lathe computes it)."""
    s = min(size / w, size / h)
    nw = min(size, max(1, int(w * s + 0.5)))
    nh = min(size, max(1, int(h * s + 0.5)))
    return nw, nh, (size - nw) // 2, (size - nh) // 2


def load(job):
    path, size = job
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        nw, nh, x0, y0 = letterbox_geometry(im.width, im.height, size)
        if im.size != (nw, nh):
            im = im.resize((nw, nh), Image.BILINEAR)
        canvas = np.full((size, size, 3), PAD, np.uint8)
        canvas[y0:y0 + nh, x0:x0 + nw] = np.asarray(im)
    return canvas


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--level", type=int, default=1)
    args = ap.parse_args()

    t0 = time.perf_counter()
    paths = sorted(os.path.join(args.images, n) for n in os.listdir(args.images)
                   if n.lower().endswith(EXTENSIONS))
    if not paths:
        sys.exit(f"peer_plain: no images in {args.images}")
    S = args.size
    with h5py.File(args.out, "w") as f:
        dset = f.create_dataset("images", shape=(len(paths), S, S, 3), dtype=np.uint8, chunks=(1, S, S, 3),
                                **hdf5plugin.Zstd(clevel=args.level))
        with Pool(args.threads) as pool:
            for i, pixels in enumerate(pool.imap(load, [(p, S) for p in paths], chunksize=4)):
                dset[i] = pixels
    dt = time.perf_counter() - t0
    print(f"peer_plain: {len(paths)} images, {args.threads} processes: {dt:.3f} s, {len(paths) / dt:.1f} images/s")


if __name__ == "__main__":
    main()
