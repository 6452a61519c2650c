"""Helpers of the accuracy benchmark (run.sh beside this file calls them):

  bench.py lathe-dets PREDICT_DIR OUT.json
      `lathe predict RUN FOLDER` numbers images by their position in the folder (images.json maps
      that id to the file); the file stem is the sample id export_yolo.py gave it, which is the
      ground truth's image id. Writes the results with that id.
  bench.py score GT.json DETS.json LATHE_REPORT.json OUT.json
      scores DETS.json with pycocotools and checks that `lathe eval --detections`' 12 metrics
      (LATHE_REPORT.json) agree to 1e-6; writes both and the largest difference.
  bench.py result SIDE DIR TRAIN_SECONDS
      DIR/result.json for one side: the pycocotools metrics of DIR/score.json, the training wall
      time, and the per-epoch validation curve (lathe: the run's log.jsonl, DIR/run/log.jsonl;
      Ultralytics: results.csv in DIR/summary.json).
  bench.py table OUT_DIR
      gathers OUT_DIR/<dataset>/{lathe,ultralytics}/result.json into OUT_DIR/accuracy.json and
      prints the table."""
import contextlib
import io
import json
import sys
from pathlib import Path

KEYS = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
        "AR_medium", "AR_large"]


def lathe_dets(pred_dir, out):
    pred_dir = Path(pred_dir)
    images = json.loads((pred_dir / "images.json").read_text())
    ids = {im["id"]: int(Path(im["file_name"]).stem) for im in images}
    dets = json.loads((pred_dir / "predictions.json").read_text())
    for d in dets:
        d["image_id"] = ids[d["image_id"]]
    Path(out).write_text(json.dumps(dets))
    print(f"lathe: {len(dets)} detections on {len(images)} images")


def score(gt_path, dt_path, lathe_report, out):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    dets = json.loads(Path(dt_path).read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        e = COCOeval(gt, gt.loadRes(dets) if dets else COCO(), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    py = {k: float(v) for k, v in zip(KEYS, e.stats)}
    la = {k: float(v) for k, v in json.loads(Path(lathe_report).read_text())["metrics"].items() if k in KEYS}
    diff = max(abs(py[k] - la[k]) for k in KEYS)
    Path(out).write_text(json.dumps({"pycocotools": py, "lathe_eval": la, "max_diff": diff}, indent=1) + "\n")
    if diff > 1e-6:
        sys.exit(f"score: lathe eval and pycocotools differ by {diff:.3g} on {dt_path}")
    print(f"pycocotools: mAP {py['AP']:.4f} AP50 {py['AP50']:.4f}; lathe eval agrees (max diff {diff:.1e})")


def result(side, d, train_seconds, split="val"):
    d = Path(d)
    sc = json.loads((d / "score.json").read_text())["pycocotools"]
    dets = len(json.loads((d / "dets.json").read_text()))
    if side == "lathe":
        log = [json.loads(x) for x in (d / "run" / "log.jsonl").read_text().splitlines() if x.strip()]
        curve = [{"epoch": e["epoch"], "val_map": e.get("val_map"), "val_map50": e.get("val_map50"),
                  "loss": e.get("loss"), "loss_box": e.get("loss_box"), "loss_cls": e.get("loss_cls"),
                  "loss_dfl": e.get("loss_dfl"), "lr": e.get("lr"), "seconds": e.get("seconds")}
                 for e in log if "epoch" in e]
    else:
        s = json.loads((d / "summary.json").read_text())
        curve = [{"epoch": int(e["epoch"]), "val_map": e.get("metrics/mAP50-95(B)"),
                  "val_map50": e.get("metrics/mAP50(B)"), "loss_box": e.get("train/box_loss"),
                  "loss_cls": e.get("train/cls_loss"), "loss_dfl": e.get("train/dfl_loss"),
                  "lr": e.get("lr/pg0"), "seconds": e.get("time")} for e in s["per_epoch"]]
    maps = [c["val_map"] or 0 for c in curve]
    best = curve[maps.index(max(maps))]["epoch"] if curve else None
    r = {"mAP": sc["AP"], "AP50": sc["AP50"], "AP75": sc["AP75"], "train_seconds": float(train_seconds),
         "detections": dets, "best_epoch": best, "scored_split": split, "metrics": sc, "per_epoch": curve}
    (d / "result.json").write_text(json.dumps(r, indent=1) + "\n")


def table(out_dir):
    out_dir = Path(out_dir)
    rows = []
    for ds in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        sides = {}
        for side in ("lathe", "ultralytics"):
            f = ds / side / "result.json"
            if f.is_file():
                sides[side] = json.loads(f.read_text())
        if len(sides) < 2:
            continue
        la, ul = sides["lathe"], sides["ultralytics"]
        for side, r in sides.items():
            rows.append({"dataset": ds.name, "side": side, **r})
        rows.append({"dataset": ds.name, "side": "lathe / ultralytics",
                     "mAP": la["mAP"] / ul["mAP"] if ul["mAP"] > 0 else None,
                     "AP50": la["AP50"] / ul["AP50"] if ul["AP50"] > 0 else None,
                     "train_seconds": la["train_seconds"] / ul["train_seconds"],
                     "mAP_points_behind": round(100 * (ul["mAP"] - la["mAP"]), 2) + 0.0})
    doc = {"rows": rows}
    meta = out_dir / "run.json"
    if meta.is_file():
        doc.update(json.loads(meta.read_text()))
    (out_dir / "accuracy.json").write_text(json.dumps(doc, indent=1) + "\n")

    def f(x, width):
        return f"{'-':>{width}}" if x is None else f"{x:{width}.3f}"
    print(f"{'dataset':<10} {'side':<20} {'mAP50-95':>9} {'AP50':>7} {'train s':>9}   notes")
    for r in rows:
        if r["side"] == "lathe / ultralytics":
            behind = r["mAP_points_behind"]
            note = f"lathe {behind:.2f} mAP points behind" if behind > 0 else f"lathe {abs(behind):.2f} mAP points ahead"
            print(f"{r['dataset']:<10} {'ratio lathe/ultra':<20} {f(r['mAP'], 9)} {f(r['AP50'], 7)} "
                  f"{r['train_seconds']:9.3f}   {note}")
        else:
            print(f"{r['dataset']:<10} {r['side']:<20} {r['mAP']:9.4f} {r['AP50']:7.4f} {r['train_seconds']:9.1f}   "
                  f"best val epoch {r.get('best_epoch', '?')}, {r['detections']} detections on "
                  f"{r.get('scored_split', 'val')}")
    print(f"written {out_dir / 'accuracy.json'}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"lathe-dets": lathe_dets, "score": score, "result": result, "table": table}[cmd](*args)


if __name__ == "__main__":
    main()
