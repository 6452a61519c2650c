"""Exports a lathe dataset (pixels store) to Ultralytics' YOLO layout, reading the shards with h5py,
so that lathe and Ultralytics train and validate on exactly the same pixels and the same split:

  OUT/images/{train,val}/NNNNNNNN.png   the stored pixels (/images) of each sample
  OUT/labels/{train,val}/NNNNNNNN.txt   its boxes (/boxes, /box_labels, /box_offsets) as
                                        `class cx cy w h`, normalized to the stored size
  OUT/data.yaml                         Ultralytics' dataset file (path, train, val, test, names)
  OUT/gt_val.json                       COCO ground truth of the val split in stored pixels
  OUT/export.json                       counts, image size, class names
  with --test also OUT/images/test, OUT/labels/test and OUT/gt_test.json

NNNNNNNN is the sample's global index (shards in manifest order, rows in order: the sample id of
`lathe info` and `lathe analyze`), which is also its COCO image id; Ultralytics' save_json turns a
numeric file stem into that integer. Category ids are class indices (as `lathe predict` writes
them). Crowd and ignored boxes (/box_flags) are not training targets on either side: they are left
out of the YOLO labels and kept in the ground truth as iscrowd (pycocotools ignores them). The split
comes from /meta's `split` field (0 train, 1 val, 2 test; test samples are exported only with
--test: a val split too small to score on, as the demo's 51 photos, is still what both sides pick
their best epoch by, and the test split is where they are scored).

With --background F (0..1), a train sample without boxes (a tile of plain belt) is exported only
when a fixed hash of its index falls in the first F of the range: the same share of empty tiles that
lathe's `data.background: F` draws afresh each epoch, fixed here because Ultralytics has no such
option. Val keeps every sample.

usage: export_yolo.py DATASET OUT [--background F] [--test]"""
import argparse
import json
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter 32015)
import numpy as np
from PIL import Image

SPLITS = {0: "train", 1: "val", 2: "test"}


def kept_background(sid, share):
    """A fixed pseudo-random choice of share of the empty train samples (Knuth's multiplicative hash)."""
    return share >= 1 or (sid * 2654435761) % 4294967296 < share * 4294967296


def main():
    ap = argparse.ArgumentParser(description="Export a lathe dataset to Ultralytics' YOLO layout.")
    ap.add_argument("dataset")
    ap.add_argument("out")
    ap.add_argument("--background", type=float, default=1.0, help="share of empty train samples kept (default 1)")
    ap.add_argument("--test", action="store_true", help="also export the test split, with gt_test.json")
    args = ap.parse_args()
    if not 0 <= args.background <= 1:
        ap.error("--background must be within 0..1")
    src, out = Path(args.dataset), Path(args.out)
    manifest = json.loads((src / "manifest.json").read_text())
    if manifest.get("store") != "pixels":
        raise SystemExit(f"export_yolo: {src} stores {manifest.get('store')}, not pixels")
    if not manifest.get("complete"):
        raise SystemExit(f"export_yolo: {src} is not complete")
    names = list(manifest["class_names"])
    splits = {k: v for k, v in SPLITS.items() if v != "test" or args.test}
    scored = [v for v in splits.values() if v != "train"]
    for split in splits.values():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    gts = {split: ([], []) for split in scored}  # images, annotations
    counts = {"skipped_test": 0, "skipped_background": 0, "crowd_or_ignored": 0}
    for split in splits.values():
        counts[split] = counts["boxes_" + split] = 0
    sample = 0
    size = None
    for shard in manifest["shards"]:
        with h5py.File(src / shard["file"], "r") as f:
            n = f["images"].shape[0]
            off = f["box_offsets"][:]
            boxes = f["boxes"][:] if "boxes" in f else np.zeros((0, 4), np.float32)
            labels = f["box_labels"][:] if "box_labels" in f else np.zeros(0, np.int32)
            flags = f["box_flags"][:] if "box_flags" in f else np.zeros(len(labels), np.uint8)
            split_ids = f["meta"]["split"]
            for i in range(n):
                sid, sample = sample, sample + 1
                split = splits.get(int(split_ids[i]))
                if split is None:
                    counts["skipped_test"] += 1
                    continue
                if split == "train" and off[i + 1] == off[i] and not kept_background(sid, args.background):
                    counts["skipped_background"] += 1
                    continue
                img = f["images"][i]
                h, w = img.shape[:2]
                size = size or [h, w]
                stem = f"{sid:08d}"
                Image.fromarray(img).save(out / "images" / split / f"{stem}.png", compress_level=1)
                lines = []
                for k in range(int(off[i]), int(off[i + 1])):
                    x1, y1, x2, y2 = (float(v) for v in boxes[k])
                    crowd = int(flags[k]) & 3
                    if split in gts:
                        anns = gts[split][1]
                        anns.append({"id": len(anns) + 1, "image_id": sid, "category_id": int(labels[k]),
                                     "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                                     "iscrowd": 1 if crowd else 0})
                    if crowd:
                        counts["crowd_or_ignored"] += 1
                        continue
                    lines.append(f"{int(labels[k])} {(x1 + x2) / 2 / w:.8f} {(y1 + y2) / 2 / h:.8f} "
                                 f"{(x2 - x1) / w:.8f} {(y2 - y1) / h:.8f}")
                    counts["boxes_" + split] += 1
                (out / "labels" / split / f"{stem}.txt").write_text("".join(x + "\n" for x in lines))
                counts[split] += 1
                if split in gts:
                    gts[split][0].append({"id": sid, "file_name": f"{stem}.png", "width": w, "height": h})
    categories = [{"id": c, "name": name} for c, name in enumerate(names)]
    for split, (images, anns) in gts.items():
        (out / f"gt_{split}.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    yaml = [f"path: {out.resolve()}"] + [f"{split}: images/{split}" for split in splits.values()] + ["names:"]
    yaml += [f"  {c}: {json.dumps(name)}" for c, name in enumerate(names)]
    (out / "data.yaml").write_text("\n".join(yaml) + "\n")
    info = {"dataset": str(src.resolve()), "image_size": size, "class_names": names, **counts}
    (out / "export.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"exported {src}: " + ", ".join(f"{counts[s]} {s}" for s in splits.values()) +
          f" images ({size[0]}x{size[1]}), " + " + ".join(str(counts["boxes_" + s]) for s in splits.values()) +
          f" boxes, {len(names)} classes -> {out}")


if __name__ == "__main__":
    main()
