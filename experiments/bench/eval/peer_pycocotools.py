"""The evaluation benchmark's peer: pycocotools (or faster-coco-eval with --faster) on the same
files, the whole job timed from loading to summary. Prints one JSON line: seconds, stats.

usage: peer_pycocotools.py GT.json DT.json [--faster]"""
import contextlib
import io
import json
import sys
import time


def main():
    gt_path, dt_path = sys.argv[1], sys.argv[2]
    if "--faster" in sys.argv:
        from faster_coco_eval import COCO, COCOeval_faster as COCOeval
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        dt = gt.loadRes(dt_path)
        e = COCOeval(gt, dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    print(json.dumps({"seconds": time.perf_counter() - t0, "stats": [float(s) for s in e.stats]}))


if __name__ == "__main__":
    main()
