#!/usr/bin/env python3
"""An MVTec AD-style anomaly set with planted defects: brushed-metal surfaces (streaks along one
direction, grain, uneven light, camera noise: no two alike) photographed good for training, and a
test set of good ones and ones with a scratch, a stain or a dent, each defect's pixel mask under
ground_truth/ as MVTec AD lays it out:

    OUT/surface/train/good/000.png
    OUT/surface/test/{good,scratch,stain,dent}/000.png
    OUT/surface/ground_truth/{scratch,stain,dent}/000_mask.png

lathe ingest reads it with --split source (train/ and test/ are the splits). Deterministic for a seed.
usage: make_surfaces.py OUT [--train N] [--test-good N] [--test-defect N] [--size S] [--seed S]
"""
import argparse
import os

import numpy as np
from PIL import Image


def surface(rng, size):
    """A brushed-metal surface: streaks along a slightly tilted axis, fine grain, a light gradient."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    tilt = rng.uniform(-0.08, 0.08)
    along = y + tilt * x  # streaks run along x
    streak = np.zeros((size, size), np.float32)
    for period, amp in ((rng.uniform(2.5, 4), 6), (rng.uniform(7, 12), 5), (rng.uniform(20, 40), 4)):
        streak += amp * np.sin(2 * np.pi * along / period + rng.uniform(0, 2 * np.pi))
    row_noise = rng.normal(0, 4, size * 2)
    streak += np.interp(along.ravel() + size / 2, np.arange(size * 2), row_noise).reshape(size, size)
    base = rng.uniform(120, 150)
    light = rng.uniform(-15, 15) * (x / size - 0.5) + rng.uniform(-15, 15) * (y / size - 0.5)
    img = base + streak + light + rng.normal(0, 3, (size, size))
    return np.clip(np.stack([img * 0.98, img, img * 1.03], -1), 0, 255)


def seg_dist(x, y, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = np.clip(((x - ax) * dx + (y - ay) * dy) / max(dx * dx + dy * dy, 1e-6), 0, 1)
    return np.hypot(x - ax - t * dx, y - ay - t * dy)


def plant(rng, img, kind):
    """Draws one defect of kind into img (in place); returns its mask (bool)."""
    size = img.shape[0]
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    if kind == "scratch":  # a thin line across the grain, lighter or darker
        ang, length = rng.uniform(0.3, np.pi - 0.3), rng.uniform(0.15, 0.35) * size
        ax, ay = cx - np.cos(ang) * length / 2, cy - np.sin(ang) * length / 2
        bx, by = cx + np.cos(ang) * length / 2, cy + np.sin(ang) * length / 2
        alpha = np.clip(rng.uniform(0.8, 1.4) + 0.5 - seg_dist(x, y, ax, ay, bx, by), 0, 1)
        delta = rng.choice([-1, 1]) * rng.uniform(45, 70)
        img += alpha[..., None] * delta
    elif kind == "stain":  # a soft dark blot with a brownish tint
        a, b = rng.uniform(0.04, 0.08, 2) * size
        rho = np.hypot((x - cx) / a, (y - cy) / b)
        alpha = np.clip(1.3 - rho, 0, 1) * rng.uniform(0.45, 0.7)
        img *= 1 - alpha[..., None] * np.array([0.35, 0.45, 0.6])
    else:  # dent: a hollow lit from the upper left
        r = rng.uniform(0.05, 0.09) * size
        dx, dy = (x - cx) / r, (y - cy) / r
        rho = np.hypot(dx, dy)
        alpha = np.clip((1 - rho) * r * 0.5 + 0.5, 0, 1)
        shade = (dx + dy) / 1.4142 * 40 * rng.uniform(0.8, 1.2)
        img += (alpha * shade)[..., None]
    return alpha > 0.3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--train", type=int, default=120)
    ap.add_argument("--test-good", type=int, default=30)
    ap.add_argument("--test-defect", type=int, default=20, help="per defect kind")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    root = os.path.join(a.out, "surface")

    def save(rel, arr):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(arr).save(path)

    for i in range(a.train):
        save(f"train/good/{i:03d}.png", surface(rng, a.size).astype(np.uint8))
    for i in range(a.test_good):
        save(f"test/good/{i:03d}.png", surface(rng, a.size).astype(np.uint8))
    for kind in ("scratch", "stain", "dent"):
        for i in range(a.test_defect):
            img = surface(rng, a.size)
            mask = plant(rng, img, kind)
            save(f"test/{kind}/{i:03d}.png", np.clip(img, 0, 255).astype(np.uint8))
            save(f"ground_truth/{kind}/{i:03d}_mask.png", (mask * 255).astype(np.uint8))
    print(f"{a.train} good training surfaces, {a.test_good} good and {3 * a.test_defect} defective test surfaces in {root}")


if __name__ == "__main__":
    main()
