#!/usr/bin/env python3
"""The Python peer of lathe's anomaly head (a numpy / scipy / scikit-learn PatchCore written for the
benchmark, since anomalib needs torch and downloaded weights): the same feature model (read from a
lathe run's config.yaml and best.safetensors, run with numpy), the same memory (every tenth good
training image held out, as lathe does without a val split), greedy k-center coreset on a random
projection, nearest-neighbour patch scores (scikit-learn), bilinear upsampling and a Gaussian
(scipy), image AUROC and pixel AUROC (scikit-learn) and PRO up to a false positive rate of 0.3.

usage: peer_patchcore.py DATASET RUN [--split test] [--json OUT]
Prints one JSON object: the metrics, the image scores in dataset order, and the seconds spent
building the memory (fit) and scoring the split (score).
"""
import argparse
import json
import os
import time

import h5py
import hdf5plugin  # noqa: F401  (the shards' zstd filter)
import numpy as np
import yaml
from safetensors.numpy import load_file
from scipy import ndimage
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

SPLITS = {"train": 0, "val": 1, "test": 2}


def read_split(dataset, split):
    """Images (N, H, W, 3) uint8, labels, masks (N, H, W) of one split, in dataset order."""
    manifest = json.load(open(os.path.join(dataset, "manifest.json")))
    images, labels, masks = [], [], []
    for shard in manifest["shards"]:
        with h5py.File(os.path.join(dataset, shard["file"])) as f:
            keep = f["meta"]["split"][:] == SPLITS[split]
            if not keep.any():
                continue
            images.append(f["images"][:][keep])
            labels.append(f["labels"][:][keep])
            masks.append(f["masks"][:][keep] if "masks" in f else np.zeros(images[-1].shape[:3], np.uint8))
    return np.concatenate(images), np.concatenate(labels), np.concatenate(masks)


def conv(x, w, b, stride, pad):
    """NCHW convolution as one matrix product over the sliding windows."""
    k = w.shape[2]
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k * k)
    y = cols @ w.reshape(w.shape[0], -1).T
    if b is not None:
        y += b
    return y.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)


def features(spec, weights, x):
    """The spec's layers (conv, relu, upsample, concat, avgpool: what a feature model needs) on x."""
    outs, names = [], {}
    for i, layer in enumerate(spec["model"]["layers"]):
        t = layer["type"]
        prev = outs[-1] if outs else x
        if t == "conv":
            k, s = layer.get("k", 3), layer.get("stride", 1)
            name = layer["name"]
            y = conv(prev, weights[name + ".weight"], weights.get(name + ".bias"), s, layer.get("pad", (k - 1) // 2))
        elif t == "relu":
            y = np.maximum(prev, 0)
        elif t == "upsample":
            f = layer.get("factor", 2)
            y = prev.repeat(f, 2).repeat(f, 3)
        elif t == "concat":
            y = np.concatenate([outs[names[s]] if isinstance(s, str) else outs[i + s] for s in layer["from"]], 1)
        elif t == "avgpool":
            k, s, p = layer.get("k", 2), layer.get("stride", layer.get("k", 2)), layer.get("pad", 0)
            c = prev.shape[1]
            y = conv(prev.reshape(-1, 1, *prev.shape[2:]), np.full((1, 1, k, k), 1 / (k * k), np.float32), None, s, p)
            y = y.reshape(prev.shape[0], c, *y.shape[2:])
        else:
            raise SystemExit(f"peer: layer type {t} is not in this peer")
        if "name" in layer:
            names[layer["name"]] = i
        outs.append(y.astype(np.float32))
    return outs[-1]


def patches(spec, weights, images, batch=16):
    """(N, P, C) patch features of uint8 images."""
    mean, std = spec.get("data", {}).get("mean", 0.5), spec.get("data", {}).get("std", 0.25)
    out = []
    for i in range(0, len(images), batch):
        x = (images[i:i + batch].transpose(0, 3, 1, 2).astype(np.float32) / 255 - mean) / std
        f = features(spec, weights, x)
        out.append(f.reshape(f.shape[0], f.shape[1], -1).transpose(0, 2, 1))
        shape = f.shape[2:]
    return np.concatenate(out), shape


def coreset(x, m, dims, seed):
    """Greedy k-center: m rows of x, each the farthest from those chosen (on a random projection)."""
    rng = np.random.default_rng(seed)
    if x.shape[1] > dims:
        x = x @ (rng.standard_normal((x.shape[1], dims)).astype(np.float32) / np.sqrt(dims))
    sq = (x * x).sum(1)
    best = np.full(len(x), np.inf, np.float32)
    cur, chosen = int(rng.integers(len(x))), []
    for _ in range(m):
        chosen.append(cur)
        best = np.minimum(best, sq - 2 * (x @ x[cur]) + sq[cur])
        cur = int(best.argmax())
    return np.array(chosen)


def upsample(s, h, w):
    """Bilinear, pixel centres aligned (PyTorch's align_corners=False)."""
    fh, fw = s.shape

    def axis(n, f):
        c = np.maximum((np.arange(n) + 0.5) * f / n - 0.5, 0)
        i0 = np.floor(c).astype(int)
        return i0, np.minimum(i0 + 1, f - 1), c - i0

    y0, y1, wy = axis(h, fh)
    x0, x1, wx = axis(w, fw)
    top = s[y0][:, x0] * (1 - wx) + s[y0][:, x1] * wx
    bot = s[y1][:, x0] * (1 - wx) + s[y1][:, x1] * wx
    return top * (1 - wy)[:, None] + bot * wy[:, None]


def pro(maps, masks, limit=0.3):
    """Per-region overlap integrated over the false positive rate up to limit, divided by it."""
    regions = np.full(maps.shape, -1, np.int64)
    n = 0
    for i, m in enumerate(masks):
        lab, k = ndimage.label(m, structure=np.ones((3, 3)))
        regions[i][lab > 0] = lab[lab > 0] - 1 + n
        n += k
    r, s = regions.ravel(), maps.ravel()
    size = np.bincount(r[r >= 0], minlength=n).astype(np.float64)
    order = np.argsort(-s, kind="stable")
    r, s = r[order], s[order]
    fpr = np.cumsum(r < 0) / (r < 0).sum()
    ov = np.cumsum(np.where(r >= 0, 1 / size[np.maximum(r, 0)], 0)) / n
    last = np.r_[s[1:] != s[:-1], True]  # the end of each run of equal scores
    fpr, ov = np.r_[0, fpr[last]], np.r_[0, ov[last]]
    cut = np.searchsorted(fpr, limit)  # the first point at or past the limit
    if cut < len(fpr):
        t = (limit - fpr[cut - 1]) / (fpr[cut] - fpr[cut - 1]) if fpr[cut] > fpr[cut - 1] else 0
        fpr, ov = np.r_[fpr[:cut], limit], np.r_[ov[:cut], ov[cut - 1] + t * (ov[cut] - ov[cut - 1])]
    return float(np.trapezoid(ov, fpr) / limit)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("run")
    ap.add_argument("--split", default="test")
    a = ap.parse_args()
    spec = yaml.safe_load(open(os.path.join(a.run, "config.yaml")))
    weights = load_file(os.path.join(a.run, "checkpoints", "best.safetensors"))
    ad = spec.get("anomaly", {})
    seed = spec.get("train", {}).get("seed", 0)
    t0 = time.perf_counter()
    images, labels, _ = read_split(a.dataset, "train")
    good = images[labels == 0]
    keep = np.arange(len(good)) % 10 != 9 if len(good) >= 10 else np.ones(len(good), bool)
    feats, (fh, fw) = patches(spec, weights, good[keep])
    rows = feats.reshape(-1, feats.shape[2])
    share = ad.get("coreset", 0.1)
    m = min(len(rows), int(np.ceil(share * len(rows))) if share <= 1 else int(share))
    bank = rows[coreset(rows, m, ad.get("coreset_dims", 64), seed)] if m < len(rows) else rows
    nn = NearestNeighbors(n_neighbors=ad.get("k", 1), algorithm="brute").fit(bank)
    t1 = time.perf_counter()
    images, labels, masks = read_split(a.dataset, a.split)
    feats, _ = patches(spec, weights, images)
    h, w = images.shape[1:3]
    sigma = ad.get("blur", 4) * h / spec["model"]["input"][1]
    maps = np.empty((len(images), h, w), np.float32)
    for i, f in enumerate(feats):
        dist, _ = nn.kneighbors(f)
        maps[i] = ndimage.gaussian_filter(upsample(dist.mean(1).reshape(fh, fw), h, w), sigma, mode="reflect", truncate=4)
    scores = maps.reshape(len(maps), -1).max(1)
    t2 = time.perf_counter()
    defect = labels != 0
    out = {"image_auroc": roc_auc_score(defect, scores), "bank": int(len(bank)), "fit_seconds": t1 - t0,
           "score_seconds": t2 - t1, "scores": scores.tolist()}
    if masks.any():
        out["pixel_auroc"] = roc_auc_score(masks.ravel() > 0, maps.ravel())
        out["pro"] = pro(maps, masks > 0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
