#!/usr/bin/env python3
"""The CI detection dataset: a COCO folder of synthetic conveyor images in which a small detector
trained on 2 CPU cores for a few minutes reaches a clearly nonzero mAP, so the CI gate can see a
regression. 128x96 JPEGs: a belt-like background (gradient, stripes, noise), 1-4 parts of three
classes (washer: a ring, bolt: a long bar, plate: a square with a hole), random size, position,
shade and occasional overlap. Deterministic for a seed.

usage: make_shapes.py OUT [--count N] [--seed S]"""
import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

W, H = 128, 96
CLASSES = ["washer", "bolt", "plate"]


def background(rng):
    yy, xx = np.mgrid[0:H, 0:W]
    base = 70 + 40 * xx / W + 10 * np.sin(yy / rng.uniform(2, 5))
    img = base[..., None] + rng.normal(0, 8, size=(H, W, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def draw_part(draw, rng, cls):
    shade = tuple(int(v) for v in rng.integers(150, 256, size=3))
    if cls == 0:  # washer: a ring
        r = int(rng.integers(7, 18))
        w = h = 2 * r
    elif cls == 1:  # bolt: a bar, horizontal or vertical
        long_, short = int(rng.integers(22, 48)), int(rng.integers(6, 11))
        w, h = (long_, short) if rng.random() < 0.5 else (short, long_)
    else:  # plate: a square with a hole
        w = h = int(rng.integers(14, 34))
    x, y = int(rng.integers(0, W - w)), int(rng.integers(0, H - h))
    if cls == 0:
        draw.ellipse([x, y, x + w - 1, y + h - 1], fill=shade)
        hole = w // 4
        draw.ellipse([x + hole, y + hole, x + w - 1 - hole, y + h - 1 - hole], fill=(60, 60, 60))
    elif cls == 1:
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=shade)
    else:
        draw.rectangle([x, y, x + w - 1, y + h - 1], fill=shade, outline=(30, 30, 30))
        c = w // 2
        draw.ellipse([x + c - w // 6, y + c - w // 6, x + c + w // 6, y + c + w // 6], fill=(50, 50, 50))
    return [x, y, w, h]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    (a.out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(a.count):
        img = background(rng)
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 5))):
            cls = int(rng.integers(0, 3))
            bbox = draw_part(draw, rng, cls)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls, "bbox": bbox,
                         "area": bbox[2] * bbox[3], "iscrowd": 0})
        name = f"belt{i:05d}.jpg"
        img.save(a.out / "images" / name, quality=90)
        images.append({"id": i + 1, "file_name": name, "width": W, "height": H})
    cats = [{"id": c, "name": n} for c, n in enumerate(CLASSES)]
    (a.out / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))


if __name__ == "__main__":
    main()
