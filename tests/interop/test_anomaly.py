"""Anomaly heads (task: anomaly) on an MVTec AD-style set with planted defects
(experiments/anomaly/make_surfaces.py): trained on good surfaces only, they must find the scratches,
stains and dents (image AUROC, pixel AUROC and PRO above floors); the report's numbers must follow
from its own scores (scikit-learn) and agree with an independent numpy/scikit-learn PatchCore on
the same features (experiments/bench/anomaly/peer_patchcore.py); predict scores files as eval
scores the samples; bad specs, a train split without good samples, a damaged memory file and
unreadable images fail clearly or are skipped, never half-written."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (the shards' zstd filter)
import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from fixtures import LATHE, lathe, output_files

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "anomaly" / "surfaces.yaml"
CPU = "train.device=cpu"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("surfaces")
    subprocess.run([sys.executable, ROOT / "experiments" / "anomaly" / "make_surfaces.py", root / "src", "--train", "40",
                    "--test-good", "10", "--test-defect", "6", "--size", "128", "--seed", "3"], check=True, capture_output=True)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 128, "--split", "source")
    lathe("train", SPEC, f"data.dataset={root / 'ds'}", CPU, "--runs", root / "runs")
    lathe("train", SPEC, f"data.dataset={root / 'ds'}", CPU, "anomaly.method=gaussian", "--runs", root / "runs", "--name", "g")
    return root


def report(run, *args):
    p = lathe("eval", run, "--split", "test", *args)
    return json.loads((Path(run) / "eval" / "report.json").read_text()), p.stdout


def test_patchcore_finds_planted_defects_and_report_is_consistent(data):
    rep, out = report(data / "runs" / "surfaces")
    assert rep["task"] == "anomaly" and rep["method"] == "patchcore"
    assert (rep["images"], rep["good"], rep["defective"]) == (28, 10, 18)
    assert rep["image_auroc"] >= 0.9 and rep["pixel_auroc"] >= 0.95 and rep["pro"] >= 0.85, out
    labels = np.array([s["label"] for s in rep["samples"]])
    scores = np.array([s["score"] for s in rep["samples"]])
    assert rep["image_auroc"] == pytest.approx(roc_auc_score(labels != 0, scores), abs=1e-9)
    names = {c["name"]: c for c in rep["classes"]}
    assert set(names) == {"dent", "scratch", "stain"} and all(c["images"] == 6 for c in names.values())
    best = rep["best_f1"]
    called = scores >= best["threshold"]
    tp = (called & (labels != 0)).sum()
    assert best["f1"] == pytest.approx(2 * tp / (called.sum() + (labels != 0).sum()))
    t = rep["run_threshold"]
    assert t["accuracy"] == pytest.approx(((scores >= t["threshold"]) == (labels != 0)).mean())
    assert rep["defect_regions"] >= 18 and rep["map_size"] == [128, 128]
    assert len(rep["maps"]) == 12 and all((data / "runs" / "surfaces" / "eval" / m["file"]).stat().st_size > 0 for m in rep["maps"])
    html = (data / "runs" / "surfaces" / "eval" / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 12 and "pixel AUROC" in html
    assert "image AUROC" in out and "PRO" in out
    metrics = json.loads((data / "runs" / "surfaces" / "metrics.json").read_text())
    assert metrics["images"] == 36 and metrics["calibration_images"] == 4  # every tenth good image held out
    assert metrics["bank"] == int(np.ceil(0.1 * metrics["patches"]))


def test_the_ci_gate_holds_anomaly_reports(data, tmp_path):
    rep, _ = report(data / "runs" / "surfaces")
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(rep))
    lathe("eval", data / "runs" / "surfaces", "--split", "test", "--baseline", base)  # equal: passes
    rep["pixel_auroc"] += 0.05
    rep["classes"][0]["image_auroc"] = 1.5
    base.write_text(json.dumps(rep))
    p = lathe("eval", data / "runs" / "surfaces", "--split", "test", "--baseline", base, check=False)
    assert p.returncode == 3 and "pixel_auroc" in p.stderr + p.stdout and "image_auroc[dent]" in p.stderr + p.stdout


def test_agrees_with_an_independent_numpy_patchcore(data):
    rep, _ = report(data / "runs" / "surfaces")
    peer = subprocess.run([sys.executable, ROOT / "experiments" / "bench" / "anomaly" / "peer_patchcore.py",
                           data / "ds", data / "runs" / "surfaces"], check=True, capture_output=True, text=True)
    p = json.loads(peer.stdout)
    assert p["bank"] == json.loads((data / "runs" / "surfaces" / "metrics.json").read_text())["bank"]
    for key in ("image_auroc", "pixel_auroc", "pro"):
        assert rep[key] == pytest.approx(p[key], abs=0.02), key
    ours = np.array([s["score"] for s in rep["samples"]])
    assert np.corrcoef(ours, p["scores"])[0, 1] > 0.98  # the same maps up to the coreset's start


def test_gaussian_per_position_works_and_eval_notebook_reruns(data, tmp_path):
    rep, _ = report(data / "runs" / "g", "--notebook")
    assert rep["method"] == "gaussian" and rep["image_auroc"] >= 0.75 and rep["pixel_auroc"] >= 0.9
    nb = data / "runs" / "g" / "eval" / "notebook.ipynb"
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", nb,
                           "--output-dir", tmp_path], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_predict_scores_files_as_eval_scores_samples(data, tmp_path):
    rep, _ = report(data / "runs" / "surfaces")
    src = data / "src" / "surface" / "test"
    files = sorted((src / "scratch").glob("*.png"))[:3] + sorted((src / "good").glob("*.png"))[:2]
    (tmp_path / "in").mkdir()
    bad = tmp_path / "in" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    p = lathe("predict", data / "runs" / "surfaces", *files, bad, "-o", tmp_path / "out", check=False)
    assert p.returncode == 1 and "broken.png" in p.stderr  # the bad file is said, the others scored
    out = json.loads((tmp_path / "out" / "anomaly.json").read_text())
    assert out["threshold"] == pytest.approx(rep["run_threshold"]["threshold"])
    assert [Path(i["file_name"]).name for i in out["images"]] == [f.name for f in files]
    # the eval report's samples in dataset order: test shards hold dent, good, scratch, stain folders sorted
    by_source = {}
    for shard in sorted((data / "ds").glob("shard-*.h5")):
        with h5py.File(shard) as f:
            for i, m in enumerate(f["meta"][:]):
                if m["split"] == 2:
                    by_source[m["source"].decode()] = len(by_source)
    eval_score = {s["sample"]: s["score"] for s in rep["samples"]}
    first_test = min(eval_score)
    for img in out["images"]:
        rel = "surface/test/" + "/".join(Path(img["file_name"]).parts[-2:])
        assert img["score"] == pytest.approx(eval_score[first_test + by_source[rel]], rel=1e-4)
        grey = np.asarray(Image.open(tmp_path / "out" / img["map"]))
        assert grey.shape == (128, 128) and img["anomalous"] == (img["score"] >= out["threshold"])
    scratch = [i for i in out["images"] if "scratch" in i["file_name"]]
    assert all(np.asarray(Image.open(tmp_path / "out" / i["map"])).max() > 100 for i in scratch)


def test_bad_specs_and_data_fail_clearly(data, tmp_path):
    ds = f"data.dataset={data / 'ds'}"
    cases = [
        (["anomaly.method=knn"], "anomaly.method"),
        (["anomaly.k=0"], "anomaly.k"),
        (["anomaly.coreset=0"], "anomaly.coreset"),
        (["model.layers=[{type: conv, out: 8, k: 3}, {type: gap}]"], "feature map"),
        (["anomaly.k=3", "anomaly.coreset=2"], "fewer than anomaly.k"),
    ]
    for extra, words in cases:
        p = lathe("train", SPEC, ds, CPU, *extra, "--runs", tmp_path / "r", "--name", "bad", "--overwrite", check=False)
        assert p.returncode != 0 and words in p.stderr, (extra, p.stderr)
    # a dataset whose train split holds no good sample
    src = tmp_path / "defects-only" / "obj"
    for folder in ("train/scratch", "test/good"):
        (src / folder).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 100 + i, np.uint8)).save(src / folder / f"{i}.png")
    lathe("ingest", tmp_path / "defects-only", "-o", tmp_path / "ds2", "--size", 32, "--split", "source")
    p = lathe("train", SPEC, f"data.dataset={tmp_path / 'ds2'}", CPU, "model.input=[3,32,32]", "--runs", tmp_path / "r",
              "--name", "nogood", check=False)
    assert p.returncode != 0 and "no good sample" in p.stderr, p.stderr


def test_a_damaged_memory_is_refused_and_the_report_left_alone(data, tmp_path):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", data / "runs" / "surfaces", run], check=True)
    lathe("eval", run, "--split", "test")
    before = output_files(run / "eval")
    mem = run / "checkpoints" / "memory.safetensors"
    blob = bytearray(mem.read_bytes())
    blob[-5] ^= 0xFF  # one flipped byte in the bank: the content hash says so
    mem.write_bytes(bytes(blob))
    p = lathe("eval", run, "--split", "test", check=False)
    assert p.returncode != 0 and "memory.safetensors" in p.stderr
    mem.unlink()
    p = lathe("eval", run, "--split", "test", check=False)
    assert p.returncode != 0 and "memory.safetensors" in p.stderr
    assert output_files(run / "eval") == before


def test_stopped_training_leaves_no_memory_and_resume_redoes_it(data, tmp_path):
    args = [LATHE, "train", SPEC, f"data.dataset={data / 'ds'}", CPU, "anomaly.coreset=1", "--runs", tmp_path, "--name", "s"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 130:  # stopped mid-pass (else it finished first: the resume below still holds)
        assert "resume with" in err and not (tmp_path / "s" / "checkpoints" / "memory.safetensors").exists()
    lathe("train", "--resume", "--name", "s", "--runs", tmp_path)
    assert (tmp_path / "s" / "checkpoints" / "memory.safetensors").exists()


def test_sensor_windows_alone_find_the_faults_they_show(tmp_path):
    """anomaly.input sensors on lathe synth data: bearing wear, overheating, a jam and a crack's burst are in
    the windows, scratches and dents are not; windows with a dead channel, NaN cells or no file at
    all are still scored (from the channels they have), and the report counts them."""
    src = tmp_path / "synth"
    lathe("synth", src, "--count", 360, "--seed", 4, "--width", 64, "--height", 48, "--sensor-fault-rate", 0.3,
          "--defect-rate", 0.3)
    csvs = sorted((src / "sensors").glob("*.csv"))
    rng = np.random.default_rng(0)
    broken = rng.choice(len(csvs), 30, replace=False)
    for k, i in enumerate(broken):
        lines = csvs[i].read_text().splitlines()
        if k % 3 == 0:  # the temperature channel dead
            lines = [lines[0]] + [",".join(c if j != 4 else "" for j, c in enumerate(r.split(","))) for r in lines[1:]]
        elif k % 3 == 1:  # NaN cells here and there
            lines = [lines[0]] + [r if n % 5 else ",".join(["nan" if j else c for j, c in enumerate(r.split(","))])
                                  for n, r in enumerate(lines[1:])]
        else:  # no file at all
            csvs[i].unlink()
            continue
        csvs[i].write_text("\n".join(lines) + "\n")
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32, "--split", "0.6,0.1,0.3", "--group-by", "part[0-9]+")
    spec = ROOT / "experiments" / "anomaly" / "sensors.yaml"
    lathe("train", spec, f"data.dataset={tmp_path / 'ds'}", "--runs", tmp_path / "runs")
    p = lathe("eval", tmp_path / "runs" / "sensors", "--split", "test")
    rep = json.loads((tmp_path / "runs" / "sensors" / "eval" / "report.json").read_text())
    assert rep["input"] == "sensors" and rep["pixel_auroc"] is None and rep["maps"] == [] and "window AUROC" in p.stdout
    auroc = {c["name"]: c["image_auroc"] for c in rep["classes"]}
    assert auroc["bearing_wear"] >= 0.95 and auroc["overheating"] >= 0.95 and auroc["jam"] >= 0.9, auroc
    assert auroc.get("dent", 0.5) < 0.8  # invisible to the sensors: near chance
    scores = np.array([s["score"] for s in rep["samples"]])
    assert np.isfinite(scores).all()
    missing = 0  # test windows with a channel that has no finite value, read back with h5py
    for shard in sorted((tmp_path / "ds").glob("shard-*.h5")):
        with h5py.File(shard) as f:
            keep = (f["meta"]["split"][:] == 2) & (f["labels"][:] >= 0)
            missing += int((~np.isfinite(f["sensors"][:][keep])).all(axis=1).any(axis=1).sum())
    assert rep["windows_missing_a_channel"] == missing and missing > 0
    p = lathe("predict", tmp_path / "runs" / "sensors", sorted((src / "images").iterdir())[0], check=False)
    assert p.returncode != 0 and "lathe eval --dataset" in p.stderr
