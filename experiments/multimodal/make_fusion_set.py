#!/usr/bin/env python3
"""A small image + sensor set where each modality sees only some faults (for the fusion head's
tests and a quick look at it): 32x32 photos of a part (a disk) and a 3-channel sensor window per
photo (vibration, temperature, motor current; 32 steps):

  good          nothing
  scratch       a light line on the part (image only)
  stain         a dark blot on the part (image only)
  bearing_wear  a high vibration harmonic (sensors only)
  overheating   a temperature ramp and rising current (sensors only)
  crack         a dark jagged line and a vibration burst (both)

with noise, drift between parts, a dead channel in some windows (--dead, an empty column) and no
sensor file at all for some photos (--no-sensors). Layout: OUT/<class>/<name>.png (class folders)
and OUT/sensors/<name>.csv (t,vib,temperature,current), as lathe ingest reads them.
usage: make_fusion_set.py OUT [--count N] [--seed S] [--dead P] [--no-sensors P]
"""
import argparse
import os

import numpy as np
from PIL import Image

CLASSES = ["good", "scratch", "stain", "bearing_wear", "overheating", "crack"]
SIZE, STEPS = 32, 32


def photo(rng, kind):
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    img = rng.normal(90, 6, (SIZE, SIZE))
    cx, cy, r = SIZE / 2 + rng.uniform(-3, 3), SIZE / 2 + rng.uniform(-3, 3), rng.uniform(10, 13)
    inside = np.hypot(x - cx, y - cy) < r
    img[inside] = rng.uniform(140, 180) + rng.normal(0, 4, inside.sum())
    if kind in ("scratch", "crack"):
        ang = rng.uniform(0, np.pi)
        t = np.linspace(-0.7, 0.7, 40) * r
        px, py = cx + t * np.cos(ang), cy + t * np.sin(ang)
        if kind == "crack":  # jagged: steps across the line
            px, py = px + np.sign(np.sin(t * 1.3)) * 1.2 * np.sin(ang), py - np.sign(np.sin(t * 1.3)) * 1.2 * np.cos(ang)
        d = np.min(np.hypot(x[..., None] - px, y[..., None] - py), axis=-1)
        line = (d < 0.9) & inside
        img[line] = 235 if kind == "scratch" else 45
    if kind == "stain":
        sx, sy = cx + rng.uniform(-5, 5), cy + rng.uniform(-5, 5)
        blot = (np.hypot(x - sx, y - sy) < rng.uniform(2.5, 4)) & inside
        img[blot] *= 0.45
    return np.clip(np.repeat(img[..., None], 3, -1), 0, 255).astype(np.uint8)


def window(rng, kind):
    t = np.arange(STEPS)
    f0 = rng.uniform(0.05, 0.09)
    vib = rng.uniform(0.3, 0.5) * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6.3)) + rng.normal(0, 0.05, STEPS)
    temp = rng.uniform(35, 45) + rng.uniform(-0.5, 0.5) * t / STEPS + rng.normal(0, 0.05, STEPS)
    cur = rng.uniform(4, 6) + rng.normal(0, 0.05, STEPS)
    if kind == "bearing_wear":
        vib += rng.uniform(0.3, 0.5) * np.sin(2 * np.pi * rng.uniform(0.38, 0.45) * t)
    if kind == "overheating":
        temp += rng.uniform(4, 8) * (t / STEPS) ** 1.2
        cur *= 1 + rng.uniform(0.1, 0.2) * t / STEPS
    if kind == "crack":
        t0 = rng.integers(6, 20)
        vib += np.where(t >= t0, 2.0 * np.exp(-(t - t0) / 3.0) * np.cos(2 * np.pi * 0.26 * (t - t0)), 0)
    return np.stack([vib, temp, cur], 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dead", type=float, default=0.05, help="share of windows with one channel empty")
    ap.add_argument("--no-sensors", type=float, default=0.03, help="share of photos without a sensor file")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(os.path.join(a.out, "sensors"), exist_ok=True)
    for c in CLASSES:
        os.makedirs(os.path.join(a.out, c), exist_ok=True)
    for i in range(a.count):
        kind = CLASSES[i % len(CLASSES)]
        name = f"p{i:05d}"
        Image.fromarray(photo(rng, kind)).save(os.path.join(a.out, kind, name + ".png"))
        if rng.uniform() < a.no_sensors:
            continue
        w = window(rng, kind)
        dead = rng.integers(0, 3) if rng.uniform() < a.dead else -1
        with open(os.path.join(a.out, "sensors", name + ".csv"), "w") as f:
            f.write("t,vib,temperature,current\n")
            for k, row in enumerate(w):
                f.write(f"{k}," + ",".join("" if j == dead else f"{v:.4f}" for j, v in enumerate(row)) + "\n")
    print(f"{a.count} photos with sensor windows in {a.out}")


if __name__ == "__main__":
    main()
