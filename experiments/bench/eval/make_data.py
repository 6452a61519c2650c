"""Writes the evaluation benchmark's files: COCO ground truth for N images (default 5000) with about
7 boxes each over 80 categories (some crowd), and a results file with 100 detections per image (near
hits of most ground truth plus random boxes), as a real detector's output looks.

usage: make_data.py OUT_DIR [N]"""
import json
import sys
from pathlib import Path

import numpy as np


def main():
    out, n = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cats = [{"id": c + 1, "name": f"c{c}"} for c in range(80)]
    images, anns, dets = [], [], []
    for i in range(n):
        images.append({"id": i + 1, "width": 640, "height": 480})
        k = int(rng.integers(3, 12))
        boxes = []
        for _ in range(k):
            w, h = float(rng.uniform(8, 250)), float(rng.uniform(8, 250))
            x, y = float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h))
            cat = int(rng.integers(1, 81))
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": int(rng.random() < 0.02)})
            boxes.append((x, y, w, h, cat))
        for x, y, w, h, cat in boxes:
            if rng.random() < 0.85:
                j = rng.normal(0, 5, 4)
                dets.append({"image_id": i + 1, "category_id": cat, "bbox": [x + j[0], y + j[1], max(1, w + j[2]), max(1, h + j[3])],
                             "score": float(rng.uniform(0.3, 1))})
        for _ in range(100 - sum(1 for d in dets[-len(boxes):] if d["image_id"] == i + 1)):
            w, h = float(rng.uniform(4, 300)), float(rng.uniform(4, 300))
            dets.append({"image_id": i + 1, "category_id": int(rng.integers(1, 81)),
                         "bbox": [float(rng.uniform(0, 600)), float(rng.uniform(0, 450)), w, h],
                         "score": float(rng.uniform(0, 0.8))})
    (out / "gt.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    (out / "dt.json").write_text(json.dumps(dets))
    print(f"{n} images, {len(anns)} ground-truth boxes, {len(dets)} detections in {out}")


if __name__ == "__main__":
    main()
