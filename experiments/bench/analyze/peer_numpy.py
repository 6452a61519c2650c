"""The Python peer of `lathe analyze` for the benchmark: what a user would script with h5py,
hdf5plugin and numpy on the same cores. Per image (a multiprocessing pool over the shards): luma
brightness, contrast and Laplacian variance over the letterbox content, and a 64-bit DCT hash of
a 32x32 area-averaged luma; then exact duplicates (hash of the pixels) and near-duplicate pairs by
numpy all-pairs Hamming distances in blocks (what people do without an index). Boxes: per-class
counts and sizes. Prints one JSON line: samples, seconds, near_pairs.

usage: peer_numpy.py DATASET THREADS RADIUS"""
import hashlib
import json
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401
import numpy as np

G = 32
_k = np.arange(8)[:, None]
_x = np.arange(G)[None, :]
DCT = np.cos(np.pi * (2 * _x + 1) * _k / (2 * G))  # (8, 32)
POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def shard_stats(path):
    out = []
    with h5py.File(path, "r") as f:
        meta, images = f["meta"][:], f["images"]
        off, labels = f["box_offsets"][:], f["box_labels"][:]
        boxes = f["boxes"][:]
        for i in range(images.shape[0]):
            img = images[i]
            m = meta[i]
            x0, y0 = int(round(float(m["pad_x"]))), int(round(float(m["pad_y"])))
            x1 = int(round(float(m["pad_x"] + m["orig_width"] * m["scale_x"])))
            y1 = int(round(float(m["pad_y"] + m["orig_height"] * m["scale_y"])))
            px = img[y0:y1, x0:x1].astype(np.float32)
            y = 0.299 * px[..., 0] + 0.587 * px[..., 1] + 0.114 * px[..., 2]
            lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
            h, w = y.shape
            grid = y[: h // G * G, : w // G * G].reshape(G, h // G, G, w // G).mean(axis=(1, 3))
            c = DCT @ grid @ DCT.T
            ac = c.ravel()[1:]
            bits = np.packbits(c.ravel() > np.median(ac))
            b = boxes[off[i]:off[i + 1]]
            sizes = [(float(bb[2] - bb[0]), float(bb[3] - bb[1])) for bb in b]
            out.append((float(y.mean()), float(y.std()), float(lap.var()), bits.tobytes(),
                        hashlib.blake2b(img.tobytes(), digest_size=8).digest(),
                        labels[off[i]:off[i + 1]].tolist(), sizes))
    return out


def near_pairs(hashes, radius):
    """All pairs within radius bits: numpy XOR + popcount in blocks of rows."""
    n = len(hashes)
    h = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(n, 8)
    found = 0
    for a in range(0, n, 256):
        x = h[a:a + 256, None, :] ^ h[None, :, :]  # (256, n, 8)
        d = POP[x].sum(axis=2, dtype=np.uint16)
        rows, cols = np.nonzero(d <= radius)
        found += int(np.count_nonzero(cols > rows + a))
    return found


def main():
    ds, threads, radius = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    t0 = time.perf_counter()
    manifest = json.loads((ds / "manifest.json").read_text())
    with Pool(threads) as pool:
        per_shard = pool.map(shard_stats, [ds / s["file"] for s in manifest["shards"]], chunksize=1)
    rows = [r for shard in per_shard for r in shard]
    stats = np.array([r[:3] for r in rows])
    summary = {k: float(np.median(stats[:, j])) for j, k in enumerate(["brightness", "contrast", "sharpness"])}
    exact = len(rows) - len({r[4] for r in rows})
    per_class = {}
    for r in rows:
        for lab, (w, h) in zip(r[5], r[6]):
            per_class.setdefault(lab, []).append(w * h)
    near = near_pairs([r[3] for r in rows], radius)
    print(json.dumps({"samples": len(rows), "seconds": time.perf_counter() - t0, "near_pairs": near,
                      "exact_duplicates": exact, "classes": len(per_class), **summary}))


if __name__ == "__main__":
    main()
