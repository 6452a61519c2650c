"""`lathe eval --detections` against pycocotools' COCOeval on the same files: every one of the 12
summary metrics to 1e-4 (in practice exactly), and per-class AP from the precision array, for
random boxes, perfect boxes, crowd regions, empty images, categories without ground truth, more than
100 detections per image, tied scores, and detections of unknown categories."""
import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fixtures import lathe


def make_gt(rng, n_images=40, n_cats=5, crowd_every=9, empty_every=7, per_image=7):
    images = [{"id": 1000 + 3 * i, "width": 640, "height": 480} for i in range(n_images)]
    cats = [{"id": 10 + 2 * c, "name": f"class{c}"} for c in range(n_cats)]
    anns = []
    for im in images:
        if im["id"] % empty_every == 0:
            continue  # an image without ground truth
        for _ in range(rng.integers(1, per_image + 1)):
            w, h = rng.uniform(4, 200), rng.uniform(4, 200)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            cat = cats[rng.integers(0, n_cats - 1)]["id"]  # the last category never has ground truth
            anns.append({"id": len(anns) + 1, "image_id": im["id"], "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h * rng.uniform(0.5, 1.0), "iscrowd": int(len(anns) % crowd_every == 4)})
    return {"images": images, "annotations": anns, "categories": cats}


def jitter(rng, box, s):
    x, y, w, h = box
    return [x + rng.normal(0, s), y + rng.normal(0, s), max(1.0, w + rng.normal(0, s)), max(1.0, h + rng.normal(0, s))]


def results(rng, gt, kind):
    cats = [c["id"] for c in gt["categories"]]
    dets = []
    if kind == "perfect":
        return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9}
                for a in gt["annotations"]]
    for a in gt["annotations"]:  # near-hits of most ground truth
        if rng.random() < 0.8:
            dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                         "bbox": jitter(rng, a["bbox"], 6), "score": float(rng.random())})
    per_image = 130 if kind == "many" else 12
    for im in gt["images"]:
        for _ in range(rng.integers(0, per_image)):
            w, h = rng.uniform(2, 300), rng.uniform(2, 300)
            score = float(rng.random())
            if kind == "ties":
                score = float(rng.integers(0, 4)) / 4
            dets.append({"image_id": im["id"], "category_id": int(rng.choice(cats + ([999] if kind == "unknown" else []))),
                         "bbox": [rng.uniform(0, 600), rng.uniform(0, 450), w, h], "score": score})
    return dets


def pycoco(gt_path, dt_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(dt_path))
        e = COCOeval(gt, dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e


@pytest.mark.parametrize("kind,seed", [("random", 1), ("random", 2), ("perfect", 3), ("many", 4), ("ties", 5),
                                       ("unknown", 6)])
def test_equals_pycocotools(tmp_path, kind, seed):
    rng = np.random.default_rng(seed)
    gt = make_gt(rng)
    dets = results(rng, gt, kind)
    gt_path, dt_path = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_path.write_text(json.dumps(gt))
    # pycocotools refuses results of categories it does not know only at evaluation; both ignore them
    dt_path.write_text(json.dumps(dets))
    ref = pycoco(gt_path, dt_path)
    p = lathe("eval", "--detections", dt_path, "--gt", gt_path, "-o", tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    ours = list(report["metrics"].values())
    np.testing.assert_allclose(ours, ref.stats, atol=1e-4, rtol=0)
    np.testing.assert_allclose(ours, ref.stats, atol=1e-12, rtol=0)  # the same arithmetic, in fact
    prec = ref.eval["precision"][:, :, :, 0, 2]
    for k, c in enumerate(report["classes"]):
        s = prec[:, :, k]
        want = float(np.mean(s[s > -1])) if (s > -1).any() else -1
        assert c["AP"] == pytest.approx(want, abs=1e-12), c["name"]
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in p.stdout


def test_boundaries_equal_pycocotools(tmp_path):
    """Matches at an IoU exactly equal to a threshold (a match in pycocotools: `if ious < iou:
    continue`), and areas exactly 32² and 96², which fall in both neighbouring ranges (a box is out of
    a range only when its area is < lo or > hi). Every IoU and area below is exact in double."""
    gt_boxes = [[0, 0, 32, 32],      # area 32²: small and medium
                [100, 0, 96, 96],    # area 96²: medium and large
                [300, 0, 40, 40]]    # area 1600
    dt_boxes = [[0, 200, 32, 32, 0.95],   # unmatched, area 32²: a false positive in small and medium
                [0, 0, 32, 16, 0.9],      # IoU 512/1024 = 0.5 with the first
                [100, 0, 96, 72, 0.8],    # IoU 6912/9216 = 0.75 with the second
                [300, 0, 40, 34, 0.7],    # IoU 1360/1600 = 0.85 with the third
                [100, 200, 96, 96, 0.6]]  # unmatched, area 96²: a false positive in medium and large
    gt = {"images": [{"id": 1, "width": 640, "height": 480}], "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3],
                           "iscrowd": 0} for i, b in enumerate(gt_boxes)]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": d[:4], "score": d[4]} for d in dt_boxes]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    ref = pycoco(tmp_path / "gt.json", tmp_path / "dt.json")
    assert list(ref.params.iouThrs[[0, 5, 7]]) == [0.5, 0.75, 0.85]  # the IoUs above are its thresholds
    matched = ref.evalImgs[0]["dtMatches"]  # all areas, thresholds x detections by score
    assert matched[[0, 5, 7]].astype(bool).tolist() == [[False, True, True, True, False],
                                                        [False, False, True, True, False],
                                                        [False, False, False, True, False]]
    lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", "-o", tmp_path / "out")
    ours = list(json.loads((tmp_path / "out" / "report.json").read_text())["metrics"].values())
    np.testing.assert_allclose(ours, ref.stats, atol=1e-12, rtol=0)


def test_bad_inputs(tmp_path):
    gt = {"images": [{"id": 1}], "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps([{"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}]))
    p = lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", check=False)
    assert p.returncode == 1 and "ground truth lacks" in p.stderr
    (tmp_path / "dt.json").write_text('{"not": "a list"}')
    p = lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", check=False)
    assert p.returncode == 1 and "JSON list" in p.stderr
    p = lathe("eval", "--detections", tmp_path / "dt.json", check=False)
    assert p.returncode == 2


def one_image_gt(anns, categories=({"id": 1, "name": "a"},)):
    return {"images": [{"id": 1}, {"id": 2}], "categories": list(categories),
            "annotations": [dict({"image_id": 1, "category_id": 1, "iscrowd": 0}, **a) for a in anns]}


def eval_both(tmp_path, gt, dets, name):
    gt_path, dt_path = tmp_path / f"{name}-gt.json", tmp_path / f"{name}-dt.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(dets))
    ref = pycoco(gt_path, dt_path)
    p = lathe("eval", "--detections", dt_path, "--gt", gt_path, "-o", tmp_path / name)
    ours = list(json.loads((tmp_path / name / "report.json").read_text())["metrics"].values())
    np.testing.assert_allclose(ours, ref.stats, atol=1e-12, rtol=0)
    return p, ref


@pytest.mark.parametrize("crowd", [True, 1, 0.5, False])
def test_iscrowd_as_pycocotools_reads_it(tmp_path, crowd):
    """pycocotools ignores a region whose iscrowd is true (true, 1, 0.5) and matches it as a crowd
    (IoU over the detection's area, many matches) when int(iscrowd) is 1 (true, 1; not 0.5). lathe
    read `true` as 0 until 2026-12-07: AP 0.25 where pycocotools says 1.0."""
    gt = one_image_gt([{"id": 1, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": crowd},
                       {"id": 2, "bbox": [60, 60, 20, 20], "area": 400}])
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 38], "score": 0.85},
            {"image_id": 1, "category_id": 1, "bbox": [60, 60, 20, 20], "score": 0.8}]
    eval_both(tmp_path, gt, dets, "crowd")


def test_annotation_id_0_scores_as_pycocotools_and_is_said(tmp_path):
    """pycocotools records a detection's match as the ground truth's id and tests it for truth: a
    detection matching annotation 0 uses it up but is a false positive. lathe agrees, and warns."""
    gt = one_image_gt([{"id": 0, "bbox": [0, 0, 10, 10], "area": 100},
                       {"id": 1, "bbox": [0, 0, 10, 10], "area": 100, "image_id": 2},
                       {"id": 2, "bbox": [200, 0, 200, 200], "area": 40000}])
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.7},
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},
            {"image_id": 1, "category_id": 1, "bbox": [200, 0, 200, 190], "score": 0.6}]
    p, ref = eval_both(tmp_path, gt, dets, "id0")
    assert 0 < ref.stats[0] < 1  # the quirk shows: not every perfect box counts
    assert "annotation has id 0" in p.stderr


@pytest.mark.parametrize("name,gt_change,dt_change,message", [
    ("duplicate annotation id", lambda g: g["annotations"][1].update(id=5) or g["annotations"][0].update(id=5), None,
     "annotation id 5 appears twice"),
    ("duplicate category id", lambda g: g["categories"].append({"id": 1, "name": "b"}), None, "category id 1 appears twice"),
    ("image id past 2^53", lambda g: g["images"].append({"id": 2 ** 53 + 1}), None,
     "id 9007199254740992 is not a whole number under 2^53"),
    ("fractional image id", lambda g: g["images"].append({"id": 1.5}), None, "id 1.5 is not a whole number"),
    ("fractional result category", None, lambda d: d[0].update(category_id=1.5), "category_id 1.5 is not a whole number"),
    ("string iscrowd", lambda g: g["annotations"][0].update(iscrowd="yes"), None, "iscrowd is not a number or a boolean"),
])
def test_ids_pycocotools_would_key_differently_are_refused(tmp_path, name, gt_change, dt_change, message):
    """Inputs that pycocotools reads into numbers no one meant (the later of two annotations with one
    id evaluated twice, a category weighed twice, ids a double rounds together, 1.5 as an image) are
    refused naming the record, where lathe used to merge, truncate or duplicate them with exit 0."""
    gt = one_image_gt([{"id": 1, "bbox": [0, 0, 10, 10], "area": 100}, {"id": 2, "bbox": [50, 0, 10, 10], "area": 100}])
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
    if gt_change:
        gt_change(gt)
    if dt_change:
        dt_change(dets)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    p = lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", "-o", tmp_path / "o",
              check=False)
    assert p.returncode == 1 and message in p.stderr, (name, p.stderr)


def test_data_after_the_json_value_is_refused(tmp_path):
    """Two results files joined by `cat`: Python's json.load refuses them ("Extra data"); lathe read
    the first list alone and dropped the rest with exit 0. Every JSON file lathe reads is held to it."""
    gt = one_image_gt([{"id": 1, "bbox": [0, 0, 10, 10], "area": 100}])
    (tmp_path / "gt.json").write_text(json.dumps(gt) + "\n\t ")  # whitespace after the value is fine
    first = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.5}]
    second = [{"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.9}]
    (tmp_path / "dt.json").write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    p = lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", "-o", tmp_path / "o",
              check=False)
    assert p.returncode == 1 and "dt.json is not valid JSON (at byte" in p.stderr
    (tmp_path / "dt.json").write_text(json.dumps(first) + "\n")
    lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", "-o", tmp_path / "o")


def test_repeated_keys_read_as_pycocotools_reads_them(tmp_path):
    """A key an object holds twice (a tool that appends a corrected "bbox" or "score"): Python's json
    keeps the last value, so pycocotools scores the later box. lathe read the first until
    2026-12-07 (AP 0 here where pycocotools says 1: the box it read is missed, and the detection
    that finds the other ranks below a false alarm); every JSON file it reads now keeps the last."""
    gt = ('{"images": [{"id": 1}], "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "a", "id": 1}],'
          ' "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 100,'
          ' "bbox": [60, 60, 10, 10], "bbox": [0, 0, 10, 10]}]}')
    dets = ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.1, "score": 0.9},'
            ' {"image_id": 1, "category_id": 1, "bbox": [100, 100, 10, 10], "score": 0.5}]')
    (tmp_path / "gt.json").write_text(gt)
    (tmp_path / "dt.json").write_text(dets)
    p = lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", "-o", tmp_path / "o",
              check=False)
    assert p.returncode == 1 and "category id 1 appears twice" in p.stderr  # the category's later id counts
    (tmp_path / "gt.json").write_text(gt.replace(', {"id": 2, "name": "a", "id": 1}', ""))
    ref = pycoco(tmp_path / "gt.json", tmp_path / "dt.json")
    assert ref.stats[0] > 0.999  # the later box, found by the detection its later score ranks first
    lathe("eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", "-o", tmp_path / "o")
    ours = list(json.loads((tmp_path / "o" / "report.json").read_text())["metrics"].values())
    np.testing.assert_allclose(ours, ref.stats, atol=1e-12, rtol=0)


def evaluated(tmp_path, seed):
    """A random ground truth and results evaluated into tmp_path/out; returns the eval arguments."""
    rng = np.random.default_rng(seed)
    gt = make_gt(rng)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(results(rng, gt, "random")))
    args = ["eval", "--detections", tmp_path / "dt.json", "--gt", tmp_path / "gt.json", "-o", tmp_path / "out"]
    lathe(*args)
    return args


def test_baseline_gate(tmp_path):
    args = evaluated(tmp_path, 9)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (tmp_path / "same.json").write_text(json.dumps(report))
    assert lathe(*args, "--baseline", tmp_path / "same.json").returncode == 0
    better = json.loads(json.dumps(report))  # a baseline 0.05 better on AP50 and on one class
    better["metrics"]["AP50"] += 0.05
    better["classes"][1]["AP"] += 0.03
    (tmp_path / "better.json").write_text(json.dumps(better))
    p = lathe(*args, "--baseline", tmp_path / "better.json", check=False)
    assert p.returncode == 3
    assert "AP50" in p.stderr and "AP[class1]" in p.stderr and "metric(s) fell" in p.stderr
    assert "AP75" not in p.stderr
    assert lathe(*args, "--baseline", tmp_path / "better.json", "--max-drop", "0.06").returncode == 0


@pytest.mark.parametrize("baseline,message", [
    ({}, "not a lathe evaluation report"),
    ([{"metrics": {"AP": 0.5}}], "not a lathe evaluation report"),
    ({"metrics": [0.5]}, "not a lathe evaluation report"),  # crashed the gate (exit 139)
    ({"accuracy": 0.9, "classes": []}, "the baseline is a classifier's report and this evaluation a detector's"),
    ({"metrics": {"AP": None, "AP50": "0.9"}, "classes": [{"name": "class0", "AP": -1}]}, "defines no metric"),
    ("twice", "the baseline names two classes class0"),
])
def test_a_baseline_that_cannot_gate_is_an_error_not_a_pass(tmp_path, baseline, message):
    """A baseline the gate cannot use exits 1 saying why: it used to pass (exit 0, "no metric fell")
    for {}, a list, metrics as null or strings, or a classifier's report, and to compare both of two
    classes of one name with the first."""
    args = evaluated(tmp_path, 10)
    if baseline == "twice":
        baseline = json.loads((tmp_path / "out" / "report.json").read_text())
        baseline["classes"].append(dict(baseline["classes"][0]))
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    p = lathe(*args, "--baseline", tmp_path / "base.json", check=False)
    assert p.returncode == 1 and message in p.stderr, p.stderr


@pytest.mark.parametrize("store", ["pixels", "encoded"])
def test_ground_truth_from_a_dataset(tmp_path, store):
    from fixtures import coco_source
    coco_source(tmp_path / "src", n=30, w=200, h=150, sensors=False)
    gt = json.loads((tmp_path / "src" / "annotations.json").read_text())
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--store", store, "--size", 96, "--split", "0,1,0")
    rng = np.random.default_rng(3)
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": jitter(rng, a["bbox"], 2),
             "score": float(rng.random())} for a in gt["annotations"]]
    dets += [{"image_id": im["id"], "category_id": int(rng.integers(0, 3)),
              "bbox": [float(rng.uniform(0, 150)), float(rng.uniform(0, 100)), 30.0, 20.0], "score": float(rng.random())}
             for im in gt["images"] for _ in range(3)]
    (tmp_path / "dt.json").write_text(json.dumps(dets))
    ref = pycoco(tmp_path / "src" / "annotations.json", tmp_path / "dt.json")
    lathe("eval", "--detections", tmp_path / "dt.json", "--dataset", tmp_path / "ds", "--split", "val",
          "-o", tmp_path / "out")
    ours = list(json.loads((tmp_path / "out" / "report.json").read_text())["metrics"].values())
    # boxes come back from stored pixels through /meta: equal up to float rounding of the mapping
    np.testing.assert_allclose(ours, ref.stats, atol=1e-4)
