"""The Ultralytics side of the accuracy benchmark: YOLOv8n from its model YAML (no weights are
downloaded: pretrained=False, YOLO_OFFLINE=1, amp=False so no AMP check model, plots=False), trained
from scratch on the CPU on an export_yolo.py folder, then its best checkpoint validated on the val
images with save_json (conf 0.001, NMS IoU 0.7, 100 detections per image, as `lathe predict` gets).

Same input size, epochs and batch as lathe; Ultralytics' own defaults for everything else
(optimizer 'auto', which is AdamW at lr 0.002*5/(4+classes) for runs this short, warmup, EMA,
augmentation) except:
  nbs = batch          Ultralytics accumulates gradients to a nominal batch of 64 (nbs) and scales
                       weight decay by batch*accumulate/nbs; nbs = batch makes it step once per
                       batch, as lathe does, so both take the same number of optimizer steps
  close_mosaic         lathe's data.augment.close_mosaic
  threads              torch.set_num_threads and ultralytics.utils.torch_utils.NUM_THREADS (which
                       select_device applies; it defaults to cpu_count - 1)

Writes OUT/dets.json (the COCO results with category_id = class index and image_id = the sample id
that export_yolo.py put in the file name), OUT/summary.json (training seconds, Ultralytics' own
val metrics, the per-epoch results.csv rows) and Ultralytics' run folders under OUT/.

usage: yolo_side.py EXPORT_DIR OUT --imgsz S --epochs E --batch B --close-mosaic C --threads T
                    [--assigner ultralytics|lathe]
The caller sets YOLO_OFFLINE, YOLO_CONFIG_DIR (with a local font as Arial.ttf) and YOLO_AUTOINSTALL."""
import argparse
import csv
import json
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("out")
    ap.add_argument("--imgsz", type=int, required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--close-mosaic", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=["val", "test"], default="val",
                    help="the split best.pt is scored on (test needs an export made with --test)")
    ap.add_argument("--assigner", choices=["ultralytics", "lathe"], default="ultralytics",
                    help="lathe: the task-aligned assigner as lathe's (alpha 1 instead of 0.5; box sides "
                         "under 16 px not enlarged to 16 px when picking candidate anchors): an ablation")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    data = str(Path(a.export).resolve() / "data.yaml")

    import torch
    torch.set_num_threads(a.threads)
    import ultralytics.utils
    import ultralytics.utils.torch_utils
    ultralytics.utils.NUM_THREADS = a.threads
    ultralytics.utils.torch_utils.NUM_THREADS = a.threads  # what select_device gives torch
    from ultralytics import YOLO
    if a.assigner == "lathe":
        from ultralytics.utils import tal
        init = tal.TaskAlignedAssigner.__init__

        def lathe_like(self, *args, **kw):
            init(self, *args, **kw)
            self.alpha, self.stride_val = 1.0, 0  # stride_val 0: no side is floored
        tal.TaskAlignedAssigner.__init__ = lathe_like
    from ultralytics import __version__ as ul_version

    model = YOLO("yolov8n.yaml")  # the architecture only: built from the packaged YAML, random weights
    t0 = time.perf_counter()
    model.train(data=data, imgsz=a.imgsz, epochs=a.epochs, batch=a.batch, nbs=a.batch,
                close_mosaic=a.close_mosaic, device="cpu", workers=0, pretrained=False, amp=False,
                plots=False, seed=a.seed, deterministic=True, project=str(out), name="train",
                exist_ok=True, verbose=False)
    train_seconds = time.perf_counter() - t0
    assert torch.get_num_threads() == a.threads, torch.get_num_threads()
    run = out / "train"
    best = YOLO(str(run / "weights" / "best.pt"))
    metrics = best.val(data=data, split=a.split, imgsz=a.imgsz, batch=a.batch, conf=0.001, iou=0.7, max_det=100,
                       save_json=True, plots=False, device="cpu", project=str(out), name="val",
                       exist_ok=True, verbose=False)
    preds = json.loads((out / "val" / "predictions.json").read_text())
    # Ultralytics numbers a custom dataset's categories 1..N (class_map); the ground truth uses class
    # indices. A numeric file stem is already the integer image id.
    dets = [{"image_id": int(p["image_id"]), "category_id": int(p["category_id"]) - 1,
             "bbox": p["bbox"], "score": p["score"]} for p in preds]
    (out / "dets.json").write_text(json.dumps(dets))
    with open(run / "results.csv", newline="") as f:
        epochs = [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    summary = {"ultralytics": ul_version, "torch": torch.__version__, "threads": a.threads,
               "train_seconds": train_seconds, "imgsz": a.imgsz, "epochs": a.epochs, "batch": a.batch,
               "nbs": a.batch, "close_mosaic": a.close_mosaic, "assigner": a.assigner, "scored_split": a.split,
               "own_metrics": {"mAP50-95": float(metrics.box.map), "mAP50": float(metrics.box.map50)},
               "detections": len(dets), "per_epoch": epochs}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"ultralytics: trained {a.epochs} epochs in {train_seconds:.1f} s; {len(dets)} detections")


if __name__ == "__main__":
    main()
