"""Exports a lathe dataset (pixels store) to Ultralytics' YOLO layout, reading the shards with h5py,
so that lathe and Ultralytics train and validate on exactly the same pixels and the same split:

  OUT/images/{train,val}/NNNNNNNN.png   the stored pixels (/images) of each sample
  OUT/labels/{train,val}/NNNNNNNN.txt   its boxes (/boxes, /box_labels, /box_offsets) as
                                        `class cx cy w h`, normalized to the stored size
  OUT/data.yaml                         Ultralytics' dataset file (path, train, val, names)
  OUT/gt_val.json                       COCO ground truth of the val split in stored pixels
  OUT/export.json                       counts, image size, class names

NNNNNNNN is the sample's global index (shards in manifest order, rows in order: the sample id of
`lathe info` and `lathe analyze`), which is also its COCO image id; Ultralytics' save_json turns a
numeric file stem into that integer. Category ids are class indices (as `lathe predict` writes
them). Crowd and ignored boxes (/box_flags) are not training targets on either side: they are left
out of the YOLO labels and kept in the ground truth as iscrowd (pycocotools ignores them). The split
comes from /meta's `split` field (0 train, 1 val, 2 test; test samples are not exported).

usage: export_yolo.py DATASET OUT"""
import json
import sys
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter 32015)
import numpy as np
from PIL import Image

SPLITS = {0: "train", 1: "val"}


def main():
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    manifest = json.loads((src / "manifest.json").read_text())
    if manifest.get("store") != "pixels":
        sys.exit(f"export_yolo: {src} stores {manifest.get('store')}, not pixels")
    if not manifest.get("complete"):
        sys.exit(f"export_yolo: {src} is not complete")
    names = list(manifest["class_names"])
    for split in SPLITS.values():
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    images, anns, counts = [], [], {"train": 0, "val": 0, "skipped_test": 0, "boxes_train": 0,
                                    "boxes_val": 0, "crowd_or_ignored": 0}
    sample = 0
    size = None
    for shard in manifest["shards"]:
        with h5py.File(src / shard["file"], "r") as f:
            n = f["images"].shape[0]
            off = f["box_offsets"][:]
            boxes = f["boxes"][:] if "boxes" in f else np.zeros((0, 4), np.float32)
            labels = f["box_labels"][:] if "box_labels" in f else np.zeros(0, np.int32)
            flags = f["box_flags"][:] if "box_flags" in f else np.zeros(len(labels), np.uint8)
            splits = f["meta"]["split"]
            for i in range(n):
                sid, sample = sample, sample + 1
                split = SPLITS.get(int(splits[i]))
                if split is None:
                    counts["skipped_test"] += 1
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
                    if split == "val":
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
                if split == "val":
                    images.append({"id": sid, "file_name": f"{stem}.png", "width": w, "height": h})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": name} for c, name in enumerate(names)]}
    (out / "gt_val.json").write_text(json.dumps(gt))
    yaml = [f"path: {out.resolve()}", "train: images/train", "val: images/val", "names:"]
    yaml += [f"  {c}: {json.dumps(name)}" for c, name in enumerate(names)]
    (out / "data.yaml").write_text("\n".join(yaml) + "\n")
    info = {"dataset": str(src.resolve()), "image_size": size, "class_names": names, **counts}
    (out / "export.json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"exported {src}: {counts['train']} train, {counts['val']} val images ({size[0]}x{size[1]}), "
          f"{counts['boxes_train']} + {counts['boxes_val']} boxes, {len(names)} classes -> {out}")


if __name__ == "__main__":
    main()
