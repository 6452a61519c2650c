"""Tiled datasets end to end: large images whose objects sit anywhere, seams included, are ingested as
tiles (--tile 64 --overlap 16 of 192x144 images: 4 x 3 tiles each), then
  - every shard holds the source image's whole boxes once, on the image's first tile, in source
    pixels (h5py reads /source_boxes and /source_box_offsets);
  - `lathe eval --detections` on whole-image detections scores them against those whole boxes exactly
    as pycocotools does against the source's own COCO file (restricted to the split's images), so an
    object cut by a seam is one ground truth, not one per tile;
  - a detector trained on the tiles is evaluated on whole images: its detections are in source
    pixels, merged across tiles, one image id per source image, and pycocotools agrees with the
    report; `lathe predict --dataset --render` draws each whole image once; `lathe predict` on image
    files cuts them into the dataset's tiles and merges the detections the same way."""
import json
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fixtures import lathe

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "experiments" / "detect" / "models" / "yolo_like.yaml"
W, H, TILE, OVERLAP = 192, 144, 64, 16
COLORS = [(220, 30, 30), (30, 60, 220)]

METRICS = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
           "AR_medium", "AR_large"]


def big_source(root, n, seed):
    """COCO folder of W x H noisy images with 2-4 squares (class 0) or bars (class 1) anywhere; every third
    image also has a square at x 40..60, whole in the first tile column (x 0..64) and cut by the second's
    edge (x 48), and a bar at x 36..76 that both columns cut."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        arr = rng.integers(90, 140, size=(H, W, 3)).astype(np.uint8)
        boxes = []
        if i % 3 == 0:
            boxes += [(0, 40, 20, 20, 20), (1, 36, 110, 40, 10)]
        for _ in range(rng.integers(2, 5)):
            c = int(rng.integers(0, 2))
            w, h = [(18, 18), (28, 10)][c]
            boxes.append((c, int(rng.integers(0, W - w)), int(rng.integers(0, H - h)), w, h))
        for c, x, y, w, h in boxes:
            arr[y:y + h, x:x + w] = COLORS[c]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
        name = f"big{i:03d}.png"
        Image.fromarray(arr).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": W, "height": H})
    cats = [{"id": 0, "name": "square"}, {"id": 1, "name": "bar"}]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root / "annotations.json"


@pytest.fixture(scope="module")
def tiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiled")
    gt = big_source(root / "src", 36, seed=3)
    lathe("ingest", root / "src", "-o", root / "ds", "--tile", TILE, "--overlap", OVERLAP, "--split", "0.7,0.3,0")
    return root, gt


def split_images(ds, split):
    """Source image ids of a split (h5py), and the first-tile rows' whole boxes per image id."""
    code = {"train": 0, "val": 1, "test": 2}[split]
    ids, whole = set(), {}
    for shard in sorted(ds.glob("shard-*.h5")):
        with h5py.File(shard) as f:
            meta, off = f["meta"][:], f["source_box_offsets"][:]
            boxes, labels = f["source_boxes"][:], f["source_box_labels"][:]
            for r, m in enumerate(meta):
                if m["split"] != code:
                    continue
                ids.add(int(m["image_id"]))
                if m["tile_x"] == 0 and m["tile_y"] == 0:
                    whole[int(m["image_id"])] = (boxes[off[r]:off[r + 1]], labels[off[r]:off[r + 1]])
                else:
                    assert off[r] == off[r + 1], "only an image's first tile holds its whole boxes"
    return ids, whole


def coco_stats(gt, dets_path, image_ids):
    coco = COCO(str(gt))
    ev = COCOeval(coco, coco.loadRes(str(dets_path)), "bbox")
    ev.params.imgIds = sorted(image_ids)
    ev.evaluate(), ev.accumulate(), ev.summarize()
    return dict(zip(METRICS, ev.stats))


def test_shards_hold_each_images_whole_boxes_once(tiled):
    root, gt = tiled
    src = json.loads(gt.read_text())
    for split in ("train", "val"):
        ids, whole = split_images(root / "ds", split)
        assert ids and set(whole) == ids
        for image_id in ids:
            want = sorted((a["category_id"], *a["bbox"]) for a in src["annotations"] if a["image_id"] == image_id)
            boxes, labels = whole[image_id]
            got = sorted((int(c), b[0], b[1], b[2] - b[0], b[3] - b[1]) for c, b in zip(labels, boxes))
            assert got == [tuple(float(v) if k else v for k, v in enumerate(w)) for w in want]


def test_eval_of_whole_image_detections_equals_pycocotools(tiled, tmp_path):
    root, gt = tiled
    ids, _ = split_images(root / "ds", "val")
    rng = np.random.default_rng(0)
    src = json.loads(gt.read_text())
    dets = []
    for a in src["annotations"]:  # every object of the split once, jittered, plus a false one per image
        if a["image_id"] not in ids:
            continue
        x, y, w, h = a["bbox"]
        j = rng.normal(0, 1.5, 4)
        dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                     "bbox": [x + j[0], y + j[1], w + j[2], h + j[3]], "score": float(rng.uniform(0.3, 1))})
    for i in ids:
        dets.append({"image_id": i, "category_id": 1, "bbox": [5, 5, 20, 8], "score": 0.35})
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(dets))
    lathe("eval", "--detections", path, "--dataset", root / "ds", "--split", "val", "-o", tmp_path / "ev")
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    want = coco_stats(gt, path, ids)
    for name in METRICS:
        assert report["metrics"][name] == pytest.approx(want[name], abs=1e-9), name
    # the objects exactly, once each: every ground truth found, seam objects included (were a seam
    # object one ground truth per tile, one detection could not find it whole)
    exact = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
             for a in src["annotations"] if a["image_id"] in ids]
    path.write_text(json.dumps(exact))
    lathe("eval", "--detections", path, "--dataset", root / "ds", "--split", "val", "-o", tmp_path / "ex")
    report = json.loads((tmp_path / "ex" / "report.json").read_text())
    assert report["metrics"]["AP"] == pytest.approx(1.0) and report["metrics"]["AR100"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def trained(tiled):
    root, gt = tiled
    spec = root / "spec.yaml"
    spec.write_text(f"""base: {MODEL}
task: detect
data:
  dataset: {root / 'ds'}
  background: 0.5
  augment: {{mosaic: 0.5, scale: 0.2, translate: 0.05, close_mosaic: 2}}
model:
  input: [3, {TILE}, {TILE}]
  width: 0.125
  depth: 0.33
  bins: 8
train:
  epochs: 6
  batch: 8
  lr: 0.004
  warmup_epochs: 1
  seed: 1
  device: cpu
""")
    lathe("train", spec, "--runs", root / "runs", "--name", "t", "--threads", 2)
    return root, gt, root / "runs" / "t"


def test_eval_on_whole_images_equals_pycocotools(trained):
    root, gt, run = trained
    lathe("eval", run, "--split", "val")
    report = json.loads((run / "eval" / "report.json").read_text())
    dets = json.loads((run / "eval" / "detections.json").read_text())
    ids, _ = split_images(root / "ds", "val")
    assert dets and {d["image_id"] for d in dets} <= ids
    for d in dets:  # source pixels: inside the whole image, not a tile
        x, y, w, h = d["bbox"]
        assert -1e-6 <= x and x + w <= W + 1e-6 and -1e-6 <= y and y + h <= H + 1e-6
    assert max(d["bbox"][0] + d["bbox"][2] for d in dets) > TILE  # boxes beyond the first tile
    per_image = {}
    for d in dets:
        per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
    assert max(per_image.values()) <= 100
    want = coco_stats(gt, run / "eval" / "detections.json", ids)
    for name in METRICS:
        assert report["metrics"][name] == pytest.approx(want[name], abs=1e-4), name
    assert report["metrics"]["AP50"] > 0.15, report["metrics"]  # learns on tiles, found on whole images
    assert "<img" in (run / "eval" / "report.html").read_text()


def test_predict_draws_whole_images_and_tiles_image_files(trained, tmp_path):
    root, gt, run = trained
    lathe("predict", run, "--dataset", root / "ds", "--split", "val", "--render", "-o", tmp_path / "p")
    ids, _ = split_images(root / "ds", "val")
    drawn = list((tmp_path / "p" / "render").glob("*.png"))
    assert len(drawn) == len(ids)
    assert all(Image.open(p).size == (W, H) for p in drawn)
    files = sorted((root / "src" / "images").glob("*.png"))[:4]
    folder = tmp_path / "files"
    folder.mkdir()
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    p = lathe("predict", run, folder, "--conf", "0.1", "-o", tmp_path / "f")
    assert f"tiles of {TILE} with overlap {OVERLAP}" in p.stderr
    tiled_dets = json.loads((tmp_path / "f" / "predictions.json").read_text())
    assert tiled_dets and all(d["bbox"][0] + d["bbox"][2] <= W + 1e-6 for d in tiled_dets)
    assert max(d["bbox"][0] for d in tiled_dets) > TILE
    lathe("predict", run, folder, "--conf", "0.1", "--tile", 0, "-o", tmp_path / "g")  # whole images, letterboxed
    bad = lathe("predict", run, folder, "--tile", 64, "--overlap", 64, "-o", tmp_path / "h", check=False)
    assert bad.returncode == 1 and "overlap" in bad.stderr
    assert lathe("predict", run, "--dataset", root / "ds", "--tile", 64, check=False).returncode == 2
    # the run's engine records the tiling (lathe.tiling): it predicts the same detections on the files
    lathe("export", run, "-o", tmp_path / "e.lathe", "--format", "lathe")
    p = lathe("predict", tmp_path / "e.lathe", folder, "--conf", "0.1", "-o", tmp_path / "e")
    assert f"tiles of {TILE} with overlap {OVERLAP}" in p.stderr
    engine_dets = json.loads((tmp_path / "e" / "predictions.json").read_text())
    assert len(engine_dets) == len(tiled_dets)
    for a, b in zip(engine_dets, tiled_dets):
        assert a["category_id"] == b["category_id"] and a["score"] == pytest.approx(b["score"], abs=1e-4)
        assert a["bbox"] == pytest.approx(b["bbox"], abs=1e-2)


def test_predict_skips_one_bad_file_and_keeps_the_others(trained, tmp_path):
    """One file among good ones: an image too long for the tiling (more than 4096 tiles a side) is
    skipped with its name, a legal 242-byte file name gets its drawing (its temporary name passed
    255 bytes and the whole run failed, nothing written), and a folder named like an image is not
    taken for one (predict does not recurse)."""
    root, _, run = trained
    good = sorted((root / "src" / "images").glob("*.png"))[0].read_bytes()
    folder = tmp_path / "files"
    (folder / "sub.png").mkdir(parents=True)
    (folder / "a.png").write_bytes(good)
    (folder / ("é" * 80 + "a" * 78 + ".png")).write_bytes(good)  # 242 bytes
    Image.new("RGB", (TILE * 4200, 8), (100, 100, 100)).save(folder / "long.png")
    p = lathe("predict", run, folder, "--render", "-o", tmp_path / "p", check=False)
    assert p.returncode == 1 and "long.png" in p.stderr and "tiles" in p.stderr, p.stderr
    images = json.loads((tmp_path / "p" / "images.json").read_text())
    assert sorted(Path(i["file_name"]).name for i in images) == sorted(["a.png", "é" * 80 + "a" * 78 + ".png"])
    drawn = sorted(f.name for f in (tmp_path / "p" / "render").iterdir())
    assert len(drawn) == 2 and all(len(n.encode()) < 255 for n in drawn)
    ok = tmp_path / "ok"
    (ok / "x.png").mkdir(parents=True)
    (ok / "a.png").write_bytes(good)
    lathe("predict", run, ok, "-o", tmp_path / "q")  # exit 0: the folder x.png is no image


def test_verify_checks_the_whole_image_boxes(tiled, tmp_path):
    root, _ = tiled
    copy = tmp_path / "ds"
    copy.mkdir()
    for f in (root / "ds").iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    lathe("verify", copy)
    shard = sorted(copy.glob("shard-*.h5"))[0]
    with h5py.File(shard, "r+") as f:
        boxes = f["source_boxes"][:]
        boxes[0, 2] = W + 50  # past the image's right edge
        f["source_boxes"][...] = boxes
        del f["source_boxes"].attrs["xxh64"]  # a writer's bad box, not a flipped bit (test_checksums.py)
    p = lathe("verify", copy, check=False)
    assert p.returncode != 0 and "source box 0" in p.stdout + p.stderr and "not inside" in p.stdout + p.stderr


@pytest.mark.parametrize("args,message", [
    (["--tile", 64, "--overlap", 64], "--overlap must be less than --tile"),
    (["--tile", 64, "--overlap", 200], "--overlap must be less than --tile"),
    (["--tile", 64, "--store", "encoded"], "does not go with --store encoded"),
])
def test_tiling_options_that_cannot_hold_are_usage_errors(tiled, tmp_path, args, message):
    """Exit 2 before anything is written. `--tile` with `--store encoded` used to exit 0 with whole
    images and a manifest that said tiled; an overlap as large as the tile exited 1 (a run failure)."""
    root, _ = tiled
    p = lathe("ingest", root / "src", "-o", tmp_path / "ds", *args, check=False)
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert not (tmp_path / "ds").exists()
