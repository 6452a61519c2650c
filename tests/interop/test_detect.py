"""Detection end to end through the CLI: a COCO dataset of clear shapes (red squares, blue bars) is
ingested, a small detector of experiments/detect/models/yolo_like.yaml is trained on it, and then
  - its validation mAP rises above a floor, and two runs with the same seed write the same bytes;
  - `lathe eval RUN` writes detections whose COCO metrics pycocotools reproduces to 1e-4, and the
    report (json with confusion matrix / best-F1 / training curves, html, md);
  - the --baseline gate exits 3 with a table when a metric fell;
  - `lathe predict` on a folder writes COCO results, images.json and drawings, skipping a corrupt file;
  - fine-tuning with --init on a dataset with another class list loads everything but the class
    convolutions, and train.freeze=backbone leaves the backbone's tensors untouched;
  - a detector run killed (SIGKILL) mid-epoch and resumed ends with the same bytes as one never
    interrupted (the loader's mosaic and affine draws included), with hard-negative mining too."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from safetensors.numpy import load_file

from fixtures import LATHE, lathe

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "experiments" / "detect" / "models" / "yolo_like.yaml"
COLORS = [(220, 30, 30), (30, 60, 220), (30, 200, 60)]


def shapes_source(root, n, classes, seed, empty_every=0):
    """COCO folder: 96x72 noisy grey images (letterboxed on ingest) with 1-3 objects: class 0 squares, class 1 wide bars,
    class 2 (when asked) tall bars, each in its own colour; with empty_every, every such image has no object."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        arr = rng.integers(90, 140, size=(72, 96, 3)).astype(np.uint8)
        for _ in range(0 if empty_every and i % empty_every == 0 else rng.integers(1, 4)):
            c = int(rng.integers(0, classes))
            w, h = [(24, 24), (36, 14), (14, 36)][c]
            x, y = int(rng.integers(0, 96 - w)), int(rng.integers(0, 72 - h))
            arr[y:y + h, x:x + w] = COLORS[c]
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": c, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": 0})
        name = f"img{i:03d}.png"
        Image.fromarray(arr).save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": 96, "height": 72})
    cats = [{"id": c, "name": ["square", "bar", "pillar"][c]} for c in range(classes)]
    (root / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return root / "annotations.json"


def write_spec(path, dataset, epochs=16, extra=""):
    path.write_text(f"""base: {MODEL}
task: detect
data:
  dataset: {dataset}
  val_split: train
  augment: {{mosaic: 0.5, scale: 0.2, translate: 0.05, close_mosaic: 3}}
model:
  input: [3, 64, 64]
  width: 0.125
  depth: 0.33
  bins: 8
train:
  epochs: {epochs}
  batch: 8
  lr: 0.004
  warmup_epochs: 1
  seed: 1
  device: cpu  # the bitwise checks are CPU properties
{extra}""")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("detect")
    gt = shapes_source(root / "src", 48, 2, seed=5)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 64, "--split", "1,0,0")
    spec = write_spec(root / "spec.yaml", root / "ds")
    lathe("train", spec, "--runs", root / "runs", "--name", "a", "--threads", 2)
    return root, gt, spec


def log_of(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_map_rises_above_a_floor(trained):
    root, _, _ = trained
    log = log_of(root / "runs" / "a")
    assert {"loss_cls", "loss_box", "loss_dfl", "val_map", "val_map50"} <= set(log[0])
    assert log[-1]["val_map50"] > 0.5, log[-1]
    assert max(e["val_map"] for e in log) > log[0]["val_map"] + 0.1
    metrics = json.loads((root / "runs" / "a" / "metrics.json").read_text())
    assert metrics["best_val_map"] == pytest.approx(max(e["val_map"] for e in log), abs=1e-6)


def test_same_seed_same_bytes(trained, tmp_path):
    root, _, spec = trained
    lathe("train", spec, "train.epochs=2", "--runs", tmp_path, "--name", "b1", "--threads", 2)
    lathe("train", spec, "train.epochs=2", "--runs", tmp_path, "--name", "b2", "--threads", 2)
    a = (tmp_path / "b1" / "checkpoints" / "last.safetensors").read_bytes()
    assert a == (tmp_path / "b2" / "checkpoints" / "last.safetensors").read_bytes()


def test_eval_equals_pycocotools_and_writes_the_report(trained):
    root, gt, _ = trained
    run = root / "runs" / "a"
    p = lathe("eval", run, "--split", "train")
    assert "mAP" in p.stdout and "Average Precision" in p.stdout
    report = json.loads((run / "eval" / "report.json").read_text())
    coco = COCO(str(gt))
    dets = json.loads((run / "eval" / "detections.json").read_text())
    assert dets and all(set(d) >= {"image_id", "category_id", "bbox", "score"} for d in dets)
    ev = COCOeval(coco, coco.loadRes(str(run / "eval" / "detections.json")), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    names = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small",
             "AR_medium", "AR_large"]
    for name, value in zip(names, ev.stats):
        assert report["metrics"][name] == pytest.approx(value, abs=1e-4), name
    assert report["metrics"]["AP50"] > 0.5
    labels = report["confusion"]["labels"]
    assert labels == ["square", "bar", "background"]
    assert all("best_f1" in c for c in report["classes"])
    assert len(report["training"]) == 16
    html = (run / "eval" / "report.html").read_text()
    assert "<img" in html and "square" in html
    assert "|" in (run / "eval" / "report.md").read_text()


def test_gate_fails_on_a_drop(trained, tmp_path):
    root, _, _ = trained
    run = root / "runs" / "a"
    lathe("eval", run, "--split", "train")
    report = json.loads((run / "eval" / "report.json").read_text())
    (tmp_path / "same.json").write_text(json.dumps(report))
    assert lathe("eval", run, "--split", "train", "--baseline", tmp_path / "same.json").returncode == 0
    report["metrics"]["AP50"] += 0.2
    (tmp_path / "better.json").write_text(json.dumps(report))
    p = lathe("eval", run, "--split", "train", "--baseline", tmp_path / "better.json", check=False)
    assert p.returncode == 3 and "AP50" in p.stderr + p.stdout


def test_predict_folder_with_render(trained, tmp_path):
    root, _, _ = trained
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ["img000.png", "img001.png", "img002.png"]:
        (folder / name).write_bytes((root / "src" / "images" / name).read_bytes())
    big = Image.open(root / "src" / "images" / "img003.png").resize((144, 192))
    big.save(folder / "wide.jpg")  # another size and format: boxes come back in its own pixels
    big.save(folder / "img000.jpg")  # the stem of img000.png again: both are drawn
    # a name that is not UTF-8: images.json stays valid JSON, with U+FFFD for the bad byte
    with open(os.path.join(os.fsencode(folder), b"bad\xff.png"), "wb") as f:
        f.write((root / "src" / "images" / "img001.png").read_bytes())
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    p = lathe("predict", root / "runs" / "a", folder, "--render", "-o", tmp_path / "out", check=False,
              errors="replace")  # its log names the file as it is
    assert p.returncode == 1 and "broken.jpg" in p.stderr and "not UTF-8" in p.stderr
    images = json.loads((tmp_path / "out" / "images.json").read_text())
    assert [Path(i["file_name"]).name for i in images] == ["bad\ufffd.png", "img000.jpg", "img000.png", "img001.png",
                                                          "img002.png", "wide.jpg"]
    assert images[5]["width"] == 144 and images[5]["height"] == 192
    preds = json.loads((tmp_path / "out" / "predictions.json").read_text())
    ids = {i["id"] for i in images}
    assert preds and all(d["image_id"] in ids and d["score"] >= 0.25 for d in preds)
    for d in preds:
        x, y, w, h = d["bbox"]
        size = next((i["width"], i["height"]) for i in images if i["id"] == d["image_id"])
        assert 0 <= x and 0 <= y and x + w <= size[0] + 1e-3 and y + h <= size[1] + 1e-3
    drawn = {name.split("-")[0]: name for name in os.listdir(tmp_path / "out" / "render")}
    for i in images:  # <image id>-<stem>.png, so images of one stem do not overwrite each other
        assert drawn[str(i["id"])].endswith(f"-{Path(i['file_name']).stem}.png") or "\ufffd" in i["file_name"]
        assert Image.open(tmp_path / "out" / "render" / drawn[str(i["id"])]).size == (i["width"], i["height"])


def test_flip_scores_an_image_and_its_mirror_alike(trained, tmp_path):
    """--flip on (eval.flip): each image is also scored mirrored and the two views fused, so an image
    and its mirror image get mirrored detections (64 x 64 crops: the model's input as it is, no
    resampling); the fused detections are not the plain ones, and --conf applies to the fused score."""
    root, _, _ = trained
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(4):
        crop = Image.open(root / "src" / "images" / f"img{i:03d}.png").crop((16, 4, 80, 68))
        crop.save(folder / f"{i}a.png")
        crop.transpose(Image.FLIP_LEFT_RIGHT).save(folder / f"{i}b.png")
    lathe("predict", root / "runs" / "a", folder, "--flip", "on", "--conf", "0.05", "-o", tmp_path / "flip")
    lathe("predict", root / "runs" / "a", folder, "--conf", "0.05", "-o", tmp_path / "plain")

    def by_name(out):
        names = {i["id"]: Path(i["file_name"]).name for i in json.loads((out / "images.json").read_text())}
        per = {name: [] for name in names.values()}
        for d in json.loads((out / "predictions.json").read_text()):
            per[names[d["image_id"]]].append(d)
        return per

    flip, plain = by_name(tmp_path / "flip"), by_name(tmp_path / "plain")
    for i in range(4):
        a = [d for d in flip[f"{i}a.png"] if d["score"] > 0.1]
        b = [dict(d, bbox=[64 - d["bbox"][0] - d["bbox"][2]] + d["bbox"][1:]) for d in flip[f"{i}b.png"] if d["score"] > 0.1]
        assert a and len(a) == len(b), (a, b)
        for d in a:  # its mirror twin: the same class, score and (mapped back) box
            twin = min(b, key=lambda e: (e["category_id"] != d["category_id"], abs(e["score"] - d["score"]),
                                         np.abs(np.subtract(e["bbox"], d["bbox"])).max()))
            assert twin["category_id"] == d["category_id"] and twin["score"] == pytest.approx(d["score"], abs=2e-3)
            assert twin["bbox"] == pytest.approx(d["bbox"], abs=1e-2)
    assert flip != plain
    # each view goes down to evaluation's floor and --conf holds for the fused score: a higher --conf
    # keeps exactly the detections that reach it
    lathe("predict", root / "runs" / "a", folder, "--flip", "on", "--conf", "0.3", "-o", tmp_path / "flip3")
    high = by_name(tmp_path / "flip3")
    for name, dets in flip.items():
        assert high[name] == [d for d in dets if d["score"] >= 0.3]
    assert any(high.values())
    p = lathe("predict", root / "runs" / "a", folder, "--flip", "yes", "-o", tmp_path / "bad", check=False)
    assert p.returncode != 0 and "--flip takes on or off" in p.stderr


def test_predict_replaces_its_output_folder_as_a_whole(trained, tmp_path):
    """predict's folder is one output set (docs/RELIABILITY.md): a rerun without --render leaves no
    drawings of the run before, and a folder of someone else's files is refused, untouched."""
    root, _, _ = trained
    image = root / "src" / "images" / "img000.png"
    lathe("predict", root / "runs" / "a", image, "--render", "-o", tmp_path / "out")
    assert os.listdir(tmp_path / "out" / "render")
    lathe("predict", root / "runs" / "a", image, "-o", tmp_path / "out")
    assert not (tmp_path / "out" / "render").exists() and (tmp_path / "out" / "predictions.json").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".out.new-")]
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    p = lathe("predict", root / "runs" / "a", image, "-o", tmp_path / "home", check=False)
    assert p.returncode == 1 and "holds files lathe did not write (notes.txt" in p.stderr, p.stderr
    assert os.listdir(tmp_path / "home") == ["notes.txt"] or sorted(os.listdir(tmp_path / "home")) == [
        ".lathe.lock", "notes.txt"]


def test_finetune_on_another_class_list_with_frozen_backbone(trained, tmp_path):
    root, _, _ = trained
    shapes_source(tmp_path / "src3", 24, 3, seed=9)
    lathe("ingest", tmp_path / "src3", "-o", tmp_path / "ds3", "--size", 64, "--split", "1,0,0")
    spec = write_spec(tmp_path / "ft.yaml", tmp_path / "ds3", epochs=2, extra="  freeze: backbone\n")
    init = root / "runs" / "a" / "checkpoints" / "best.safetensors"
    p = lathe("train", spec, "--init", init, "--runs", tmp_path, "--name", "ft", "--threads", 2)
    assert "imported" in p.stderr
    before, after = load_file(str(init)), load_file(str(tmp_path / "ft" / "checkpoints" / "best.safetensors"))
    assert after["head.cls3.2.weight"].shape[0] == 3 and before["head.cls3.2.weight"].shape[0] == 2
    backbone = [k for k in after if k.startswith("backbone.") and not k.endswith(("running_mean", "running_var"))]
    assert backbone and all(np.array_equal(before[k], after[k]) for k in backbone)
    assert not np.array_equal(before["neck.p3.cv2.conv.weight"], after["neck.p3.cv2.conv.weight"])


def test_detector_specs_build(tmp_path):
    params = {}
    for size in ["n", "s"]:
        p = lathe("train", ROOT / "experiments" / "detect" / f"detector_{size}.yaml", "--summary")
        params[size] = int(p.stdout.split("parameters: ")[1].split()[0])
    assert params["n"] < params["s"]


def torchvision_resnet18_state():
    """The state_dict keys and shapes of torchvision's resnet18 (written out here, independently of
    lathe), with random values, fc and num_batches_tracked included as a real export has them."""
    rng = np.random.default_rng(0)
    state = {}

    def conv(name, cout, cin, k):
        state[f"{name}.weight"] = rng.normal(0, 0.05, (cout, cin, k, k)).astype(np.float32)

    def bn(name, c):
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        state[f"{name}.bias"] = rng.normal(0, 0.1, c).astype(np.float32)
        state[f"{name}.running_mean"] = rng.normal(0, 0.1, c).astype(np.float32)
        state[f"{name}.running_var"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        state[f"{name}.num_batches_tracked"] = np.array(7, dtype=np.int64)

    conv("conv1", 64, 3, 7), bn("bn1", 64)
    cin = 64
    for stage, cout in enumerate([64, 128, 256, 512], start=1):
        for block in range(2):
            p = f"layer{stage}.{block}"
            conv(f"{p}.conv1", cout, cin, 3), bn(f"{p}.bn1", cout)
            conv(f"{p}.conv2", cout, cout, 3), bn(f"{p}.bn2", cout)
            if block == 0 and (stage > 1):
                conv(f"{p}.downsample.0", cout, cin, 1), bn(f"{p}.downsample.1", cout)
            cin = cout
    state["fc.weight"] = rng.normal(0, 0.05, (1000, 512)).astype(np.float32)
    state["fc.bias"] = np.zeros(1000, np.float32)
    return state


def test_resnet18_detector_loads_torchvision_names(trained, tmp_path):
    from safetensors.numpy import save_file
    root, _, _ = trained
    state = torchvision_resnet18_state()
    save_file(state, str(tmp_path / "resnet18.safetensors"))
    p = lathe("train", ROOT / "experiments" / "detect" / "detector_resnet18.yaml", f"data.dataset={root / 'ds'}",
              "data.val_split=train", "model.input=[3,64,64]", "train.epochs=1", "train.batch=8",
              "train.freeze=[conv1, layer1, layer2, layer3, layer4]", "--init", tmp_path / "resnet18.safetensors",
              "--runs", tmp_path, "--name", "r18", "--threads", 2)
    assert "imported 100 of" in p.stderr, p.stderr  # 122 keys less fc (2) and num_batches_tracked (20)
    after = load_file(str(tmp_path / "r18" / "checkpoints" / "last.safetensors"))
    convs = [k for k in state if k.endswith("weight") and ("conv" in k or "downsample.0" in k)]
    assert len(convs) == 20 and all(np.array_equal(after[k], state[k]) for k in convs)


def test_focal_and_giou_losses_train_too(trained, tmp_path):
    root, _, spec = trained
    lathe("train", spec, "train.loss.cls_kind=focal", "train.loss.iou_kind=giou", "--runs", tmp_path, "--name", "fg",
          "--threads", 2)
    log = log_of(tmp_path / "fg")
    assert log[-1]["val_map50"] > 0.3, log[-1]
    bad = lathe("train", spec, "train.loss.cls_kind=hinge", "--runs", tmp_path, "--name", "bad", check=False)
    assert bad.returncode == 1 and "cls_kind" in bad.stderr


def kill_training_after(spec, args, run, ready, delay=0.0):
    """Starts `lathe train` into run, SIGKILLs it `delay` seconds after the file `ready` appears, and checks that
    the file is there to resume from. A run that still ended first (metrics.json is its last write) proves
    nothing: it is run again, three times at most."""
    for _ in range(3):
        shutil.rmtree(run, ignore_errors=True)
        p = subprocess.Popen([LATHE, "train", str(spec), *args, "--runs", str(run.parent), "--name", run.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not ready.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=60)
        ended = (run / "metrics.json").exists()
        if not ended:
            break
    assert not ended, "every run ended before the kill: the test proved nothing"
    assert p.returncode == -signal.SIGKILL, err.decode()
    assert ready.exists()


def test_killed_and_resumed_detector_equals_uninterrupted(trained, tmp_path):
    root, _, spec = trained
    args = ["train.epochs=3", "train.checkpoint_every=4", "train.ema=0.99", "--threads", "2"]
    lathe("train", spec, *args, "--runs", tmp_path, "--name", "whole")
    last = tmp_path / "cut" / "checkpoints" / "last.safetensors"
    # killed at once after the first checkpoint (step 4 of 18), the earliest moment with one to resume from
    kill_training_after(spec, args, tmp_path / "cut", last)
    p = lathe("train", spec, "--resume", "--runs", tmp_path, "--name", "cut", "--threads", "2")
    assert "resuming at epoch" in p.stderr, p.stderr
    whole = (tmp_path / "whole" / "checkpoints" / "last.safetensors").read_bytes()
    assert whole == last.read_bytes()


def test_hard_negatives_are_empty_images_and_survive_a_kill(tmp_path):
    """data.hard_background: each epoch's draw of images without boxes is chosen by the model, kept in
    checkpoints/hard_background.json (only images without boxes, the draw's size), and a run killed after a
    choice and resumed ends with the same bytes as one never interrupted."""
    shapes_source(tmp_path / "src", 48, 2, seed=6, empty_every=2)  # 24 images without boxes
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", 64, "--split", "1,0,0")
    spec = write_spec(tmp_path / "spec.yaml", tmp_path / "ds", epochs=4)
    args = ["data.background=0.25", "data.hard_background=3", "train.checkpoint_every=2", "--threads", "2"]
    lathe("train", spec, *args, "--runs", tmp_path, "--name", "whole")
    kept = json.loads((tmp_path / "whole" / "checkpoints" / "hard_background.json").read_text())
    assert sorted(kept) == ["2", "3"]  # the last two epochs' choices (none after the last epoch)
    for samples in kept.values():
        assert len(samples) == 6 == len(set(samples))  # round(0.25 x 24)
        assert all(s % 2 == 0 for s in samples)  # ingest keeps the source order: the even images are the empty ones
    # killed a little after the first choice: in the next epoch, past a checkpoint or two
    kill_training_after(spec, args, tmp_path / "cut", tmp_path / "cut" / "checkpoints" / "hard_background.json", 0.3)
    lathe("train", spec, "--resume", "--runs", tmp_path, "--name", "cut", "--threads", "2")
    for name in ("last.safetensors", "hard_background.json"):
        assert (tmp_path / "whole" / "checkpoints" / name).read_bytes() == (tmp_path / "cut" / "checkpoints" / name).read_bytes()
    for bad in (["data.hard_background=1"], ["data.hard_background=2", "data.background=1"], ["data.hard_background=17"]):
        p = lathe("train", spec, *bad, "--runs", tmp_path, "--name", "bad", check=False)
        assert p.returncode == 1 and "hard_background" in p.stderr, p.stderr


def test_predict_needs_no_dataset_and_bad_bases_are_refused(trained, tmp_path):
    import shutil
    root, _, spec = trained
    run = tmp_path / "moved"
    shutil.copytree(root / "runs" / "a", run)
    config = (run / "config.yaml").read_text()
    assert "class_names" in config  # lathe train records the class list beside model.classes
    (run / "config.yaml").write_text(config.replace(str(root / "ds"), str(tmp_path / "gone")))
    # a low score floor: this checks predicting without the dataset, not how sure a short run is
    lathe("predict", run, root / "src" / "images" / "img000.png", "-o", tmp_path / "out", "--conf", "0.01")
    assert json.loads((tmp_path / "out" / "predictions.json").read_text())
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "child.yaml").write_text("base: list.yaml\ntask: detect\n")
    bad = lathe("train", tmp_path / "child.yaml", "--runs", tmp_path, check=False)
    assert bad.returncode == 1 and "not a mapping" in bad.stderr
