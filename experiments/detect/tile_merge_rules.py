"""Compares rules for merging tile detections into whole-image ones, offline: one set of per-tile
detections, merged by each rule, scored by pycocotools against the source images' own boxes. This
is how lathe's rule (libcore/det/tile_merge.c) was chosen (docs/PERFORMANCE.md, "The demo").

Inputs: a tiled lathe dataset (its /meta gives each tile's source image and origin), the source
archive's COCO annotations (whole images, file names as the dataset's `source` minus the leading
"images/"), and COCO results whose image_id is a tile's global sample index, as the accuracy
benchmark writes them (experiments/bench/accuracy/run.sh: OUT/tiles/lathe/dets.json, or
ultralytics/dets.json). Only the tiles of SPLIT are merged.

usage: tile_merge_rules.py DATASET ANNOTATIONS DETS [--split test] [--edge 2]
(the accuracy benchmark's .venv-ultralytics has h5py, hdf5plugin and pycocotools)"""
import argparse
import collections
import contextlib
import io
import json
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter 32015)
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

SPLITS = {"train": 0, "val": 1, "test": 2}


def overlap(a, b):
    """(IoU, intersection over the smaller box) of two boxes."""
    iw = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    ih = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    if iw <= 0 or ih <= 0:
        return 0.0, 0.0
    inter, sa, sb = iw * ih, a["w"] * a["h"], b["w"] * b["h"]
    return inter / (sa + sb - inter), inter / min(sa, sb)


def union(k, d):
    x1, y1 = max(k["x"] + k["w"], d["x"] + d["w"]), max(k["y"] + k["h"], d["y"] + d["h"])
    k["x"], k["y"] = min(k["x"], d["x"]), min(k["y"], d["y"])
    k["w"], k["h"] = x1 - k["x"], y1 - k["y"]


def merge(dets, cut_score, on_piece, iou=0.7, ios=0.5, max_det=100):
    """Greedy by score. cut_score scales cut boxes first; on_piece says what a cut box and another
    tile's box of the class covering half of the smaller become: 'keep' (both stay, plain NMS),
    'drop' (every cut box is dropped up front), 'sahi' (the union, at the better score), 'whole'
    (the whole view wins; two cut pieces stay two), 'lathe' (the whole view's box; the union of two
    cut pieces)."""
    dets = [dict(d) for d in dets if not (on_piece == "drop" and d["cut"])]
    for d in dets:
        if d["cut"]:
            d["s"] *= cut_score
    kept = []
    for d in sorted(dets, key=lambda d: -d["s"]):
        gone = False
        for k in kept:
            if k["c"] != d["c"]:
                continue
            u, s = overlap(k, d)
            if u > iou:
                gone = True
            elif k["t"] != d["t"] and s >= ios and on_piece in ("sahi", "whole", "lathe"):
                if on_piece == "sahi" and (k["cut"] or d["cut"]):
                    union(k, d)
                    k["cut"] = k["cut"] and d["cut"]
                    gone = True
                elif on_piece == "whole" and d["cut"] and not k["cut"]:
                    gone = True
                elif on_piece == "lathe" and (k["cut"] or d["cut"]):
                    if k["cut"] and d["cut"]:
                        union(k, d)
                    elif k["cut"]:
                        k.update(x=d["x"], y=d["y"], w=d["w"], h=d["h"], cut=False)
                    gone = True
            if gone:
                break
        if not gone:
            kept.append(d)
    return kept[:max_det]


RULES = [("SAHI's union (lathe before fa3affa)", 1.0, "sahi"), ("plain NMS", 1.0, "keep"),
         ("cut boxes dropped", 1.0, "drop"), ("cut x0.5, NMS", 0.5, "keep"),
         ("cut x0.5, a piece of a whole view dropped", 0.5, "whole"),
         ("cut x0.5, whole view's box, union of two pieces (lathe)", 0.5, "lathe")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("annotations")
    ap.add_argument("dets")
    ap.add_argument("--split", choices=SPLITS, default="test")
    ap.add_argument("--edge", type=float, default=2, help="px from a tile's inner edge that count as cut (2)")
    a = ap.parse_args()
    ds = Path(a.dataset)
    manifest = json.loads((ds / "manifest.json").read_text())
    tile = manifest["args"]["tile"]
    if not tile:
        raise SystemExit(f"tile_merge_rules: {ds} is not a tiled dataset (ingest --tile)")
    tiles, sid = {}, 0  # global sample index -> (source, tile x, tile y, split)
    for shard in manifest["shards"]:
        with h5py.File(ds / shard["file"], "r") as f:
            for m in f["meta"][:]:
                tiles[sid] = (m["source"].decode(), int(m["tile_x"]), int(m["tile_y"]), int(m["split"]))
                sid += 1
    gt = json.loads(Path(a.annotations).read_text())
    by_file = {"images/" + im["file_name"]: im for im in gt["images"]}
    sources = sorted({t[0] for t in tiles.values() if t[3] == SPLITS[a.split]})
    missing = [s for s in sources if s not in by_file]
    if missing:
        raise SystemExit(f"tile_merge_rules: {len(missing)} sources not in {a.annotations}, e.g. {missing[0]}")
    ids = {by_file[s]["id"] for s in sources}
    scored = {"images": [by_file[s] for s in sources], "categories": gt["categories"],
              "annotations": [x for x in gt["annotations"] if x["image_id"] in ids]}
    cats = sorted({x["category_id"] for x in scored["annotations"]})
    per_image = collections.defaultdict(list)
    for d in json.loads(Path(a.dets).read_text()):
        src, tx, ty, split = tiles[d["image_id"]]
        if split != SPLITS[a.split]:
            continue
        im = by_file[src]
        x, y, w, h = d["bbox"]
        box = {"x": x + tx, "y": y + ty, "w": w, "h": h, "s": d["score"], "c": d["category_id"], "t": (tx, ty)}
        e, W, H = a.edge, im["width"], im["height"]
        box["cut"] = ((tx > 0 and box["x"] <= tx + e) or (ty > 0 and box["y"] <= ty + e) or
                      (tx + tile < W and box["x"] + w >= tx + tile - e) or (ty + tile < H and box["y"] + h >= ty + tile - e))
        per_image[im["id"]].append(box)
    truth = COCO()
    truth.dataset = scored
    with contextlib.redirect_stdout(io.StringIO()):
        truth.createIndex()
    print(f"{len(sources)} {a.split} images, {len(scored['annotations'])} boxes, classes {cats}")
    for name, cut_score, on_piece in RULES:
        res = [{"image_id": i, "category_id": d["c"], "bbox": [d["x"], d["y"], d["w"], d["h"]], "score": d["s"]}
               for i, dets in per_image.items() for d in merge(dets, cut_score, on_piece)]
        with contextlib.redirect_stdout(io.StringIO()):
            e = COCOeval(truth, truth.loadRes(res), "bbox")
            e.params.catIds = cats
            e.evaluate(), e.accumulate(), e.summarize()
        print(f"{name:<58} mAP {e.stats[0]:.3f}  AP50 {e.stats[1]:.3f}  AR100 {e.stats[8]:.3f}")


if __name__ == "__main__":
    main()
