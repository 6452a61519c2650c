#!/usr/bin/env python3
"""peer_tuned.py - the fastest plain-library Python way to do what `lathe ingest --store pixels --size S`
does, for the ingest benchmark.

Workers (one per core: threads by default, or processes with --pool process) open each image with Pillow, ask for draft mode
(`im.draft("RGB", (nw, nh))`: libjpeg-turbo decodes at the reduced DCT scale that still covers the
letterbox size, 1280x960 -> 640x480 at 1/2), resize only if the scale did not land on the size, apply
the EXIF orientation, letterbox (centred, padded with 114) and compress the S x S x 3 pixels as one
zstd frame (the `zstandard` package, level 1, content size recorded); the parent only moves the
compressed chunks into the file with h5py's direct chunk write (`dset.id.write_direct_chunk`), in the
order they finish. Threads suit few cores: Pillow's decoder and zstandard release the GIL, so
nothing is pickled between processes; with many cores the GIL-held parts (parsing, copies, the
writes) can limit them and processes may do better, so the benchmark runs both. The dataset is declared with hdf5plugin's Zstd filter (id 32015), so h5py with
hdf5plugin reads it back as ordinary pixels.

Usage: peer_tuned.py IMAGES_DIR OUT.h5 [--threads N] [--size S] [--level L] [--pool thread|process]
Prints one line with the image count, seconds and images/s (measured inside the process).
"""
import argparse
import os
import sys
import threading
import time
from multiprocessing import Pool
from multiprocessing.pool import ThreadPool

import h5py
import hdf5plugin
import numpy as np
import zstandard
from PIL import Image, ImageOps

PAD = 114
EXTENSIONS = (".jpg", ".jpeg", ".png")
_state = threading.local()  # per worker (a thread, or the one thread of a worker process)


def letterbox_geometry(w, h, size):
    """Content size and offset of a w x h image letterboxed into size x size (as lathe computes it)."""
    s = min(size / w, size / h)
    nw = min(size, max(1, int(w * s + 0.5)))
    nh = min(size, max(1, int(h * s + 0.5)))
    return nw, nh, (size - nw) // 2, (size - nh) // 2


def init_worker(size, level):
    _state.size = size
    _state.zstd = zstandard.ZstdCompressor(level=level, write_content_size=True)
    _state.canvas = np.full((size, size, 3), PAD, np.uint8)
    _state.geometry = None


def encode(job):
    index, path = job
    size = _state.size
    with Image.open(path) as im:
        # The EXIF orientation may swap width and height: the draft request is in stored orientation.
        orientation = im.getexif().get(0x0112, 1)
        w, h = (im.height, im.width) if orientation in (5, 6, 7, 8) else im.size
        nw, nh, x0, y0 = letterbox_geometry(w, h, size)
        im.draft("RGB", (nh, nw) if orientation in (5, 6, 7, 8) else (nw, nh))
        im = ImageOps.exif_transpose(im)
        if im.mode != "RGB":
            im = im.convert("RGB")
        if im.size != (nw, nh):
            im = im.resize((nw, nh), Image.BILINEAR)
        canvas = _state.canvas
        if _state.geometry != (nw, nh):  # the pad only changes with the geometry
            canvas[:] = PAD
            _state.geometry = (nw, nh)
        canvas[y0:y0 + nh, x0:x0 + nw] = np.asarray(im)
    return index, _state.zstd.compress(canvas)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("images")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--pool", choices=("thread", "process"), default="thread")
    args = ap.parse_args()

    t0 = time.perf_counter()
    paths = sorted(os.path.join(args.images, n) for n in os.listdir(args.images)
                   if n.lower().endswith(EXTENSIONS))
    if not paths:
        sys.exit(f"peer_tuned: no images in {args.images}")
    S = args.size
    with h5py.File(args.out, "w") as f:
        dset = f.create_dataset("images", shape=(len(paths), S, S, 3), dtype=np.uint8, chunks=(1, S, S, 3),
                                **hdf5plugin.Zstd(clevel=args.level))
        with (ThreadPool if args.pool == "thread" else Pool)(args.threads, initializer=init_worker, initargs=(S, args.level)) as pool:
            for index, chunk in pool.imap_unordered(encode, enumerate(paths), chunksize=4):
                dset.id.write_direct_chunk((index, 0, 0, 0), chunk, filter_mask=0)
    dt = time.perf_counter() - t0
    print(f"peer_tuned: {len(paths)} images, {args.threads} {args.pool} workers: {dt:.3f} s, {len(paths) / dt:.1f} images/s")


if __name__ == "__main__":
    main()
