"""Image-text heads (task: contrastive) on real scans: scikit-learn's digits with descriptions
(experiments/multimodal/make_digit_captions.py), trained briefly on the CPU against
all-MiniLM-L6-v2. Zero-shot accuracy from class prompts must beat chance clearly; the report's
numbers must follow from the embeddings `lathe embed` writes (images and prompts, scored here in
numpy); bad specs fail clearly."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401
import numpy as np
import pytest

from fixtures import TEXT_MODEL as MODEL
from fixtures import digits_dataset, lathe, needs_text_model

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "multimodal" / "digits.yaml"
pytestmark = needs_text_model
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits-text")
    subprocess.run([sys.executable, ROOT / "experiments" / "multimodal" / "make_digit_captions.py", root / "src"],
                   check=True, capture_output=True)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 16)
    lathe("train", SPEC, f"data.dataset={root / 'ds'}", "train.device=cpu", "train.epochs=8", "--runs", root / "runs",
          "--name", "dt")
    return root


def test_zero_shot_beats_chance_and_report_is_complete(run):
    p = lathe("eval", run / "runs" / "dt", "--split", "test", "--notebook")
    rep = json.loads((run / "runs" / "dt" / "eval" / "report.json").read_text())
    assert rep["task"] == "contrastive" and rep["chance"] == pytest.approx(0.1)
    assert rep["accuracy"] >= 0.4, p.stdout  # 10 classes: chance is 0.1
    for way in ("image_to_text", "text_to_image"):
        r = rep["retrieval"][way]
        assert 0 <= r["R@1"] <= r["R@5"] <= r["R@10"] <= 1 and r["queries"] > 0
    assert rep["retrieval"]["image_to_text"]["R@10"] > 0.3
    assert rep["holdout"]["classes"] == ["seven"] and rep["holdout"]["samples"] > 0
    assert 0 <= rep["holdout"]["accuracy"] <= 1
    assert "zero-shot accuracy" in p.stdout and (run / "runs" / "dt" / "eval" / "report.html").exists()
    log = [json.loads(line) for line in (run / "runs" / "dt" / "log.jsonl").read_text().splitlines()]
    assert any("val_zero_shot_accuracy" in e for e in log)


def test_the_evaluation_notebook_has_zero_shot_and_retrieval(run):
    """lathe eval --notebook on an image-text run (written by the test above): the summary with
    chance, retrieval both ways and the held-out class, stored and recomputed alike."""
    from test_notebook import assert_reruns_to_the_same_tables, cell_with, execute, row_dict, tables_of
    import nbformat
    path = run / "runs" / "dt" / "eval" / "notebook.ipynb"
    if not path.exists():
        lathe("eval", run / "runs" / "dt", "--split", "test", "--notebook")
    rep = json.loads((run / "runs" / "dt" / "eval" / "report.json").read_text())
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    summary = row_dict(tables_of(cell_with(nb, 'summary = {"samples"'))[0])
    assert float(summary["chance"][0]) == pytest.approx(rep["chance"], rel=1e-5)
    retrieval = row_dict(tables_of(cell_with(nb, 'report["retrieval"]'))[0])
    assert set(retrieval) == {"image_to_text", "text_to_image"}
    assert_reruns_to_the_same_tables(nb, execute(path))


def test_report_follows_from_the_embeddings(run, tmp_path):
    """lathe embed's image rows against lathe embed's prompt rows give the report's zero-shot accuracy."""
    no_text = {**os.environ, "LATHE_TEXT_MODEL": str(tmp_path / "no-such-model")}  # images need no text model
    lathe("embed", "--dataset", run / "ds", "--run", run / "runs" / "dt", "--split", "test", "-o", tmp_path / "img.npy",
          env=no_text)
    p = lathe("embed", "--dataset", run / "ds", "--run", run / "runs" / "dt", "--text-model", MODEL, "-o",
              tmp_path / "x.npy", check=False)
    assert p.returncode == 2
    img = np.load(tmp_path / "img.npy")
    assert img.shape[1] == 384 and np.allclose(np.linalg.norm(img, axis=1), 1, atol=1e-5)
    prompts = ["a handwritten {}", "the digit {}, written by hand", "a scanned {}"]
    (tmp_path / "p.txt").write_text("\n".join(p.format(w) for w in WORDS for p in prompts) + "\n")
    lathe("embed", "--text-file", tmp_path / "p.txt", "-o", tmp_path / "p.npy")
    cls = np.load(tmp_path / "p.npy").reshape(10, 3, 384).mean(1)
    cls /= np.linalg.norm(cls, axis=1, keepdims=True)
    pred = (img @ cls.T).argmax(1)
    manifest = json.loads((run / "ds" / "manifest.json").read_text())
    labels = []
    for sh in manifest["shards"]:  # the test split's labelled images in dataset order, as lathe embed writes them
        if sh["split"] == "test":
            with h5py.File(run / "ds" / sh["file"], "r") as f:
                labels.extend(int(v) for v in f["labels"][:] if v >= 0)
    rep = json.loads((run / "runs" / "dt" / "eval" / "report.json").read_text())
    assert len(pred) == len(labels) == rep["samples"]
    assert np.mean(pred == np.array(labels)) == pytest.approx(rep["accuracy"], abs=1e-9)


def test_bad_specs_fail_clearly(run, tmp_path):
    ds = f"data.dataset={run / 'ds'}"
    args = ("train.device=cpu", "train.epochs=1", "--runs", tmp_path)
    p = lathe("train", SPEC, ds, "model.layers=[{type: gap}, {type: linear, out: 384}]", *args, "--name", "a",
              check=False)
    assert p.returncode == 1 and "ends in an l2norm layer" in p.stderr, p.stderr
    p = lathe("train", SPEC, ds, "model.layers=[{type: gap}, {type: linear, out: 100}, {type: l2norm}]", *args,
              "--name", "b", check=False)
    assert p.returncode == 1 and "384" in p.stderr, p.stderr
    p = lathe("train", SPEC, ds, "data.holdout_classes=[eleven]", *args, "--name", "c", check=False)
    assert p.returncode == 1 and "eleven" in p.stderr, p.stderr
    p = lathe("train", SPEC, ds, "eval.prompt=[]", *args, "--name", "d", check=False)
    assert p.returncode == 1 and "eval.prompt" in p.stderr, p.stderr
    p = lathe("train", SPEC, ds, "text.model=/nonexistent", *args, "--name", "e", check=False)
    assert p.returncode == 1 and "/nonexistent" in p.stderr, p.stderr
    # a dataset without descriptions: the classifier's digits folders
    digits_dataset(tmp_path / "plain", tmp_path / "plain-ds")
    p = lathe("train", SPEC, f"data.dataset={tmp_path / 'plain-ds'}", "data.holdout_classes=[]", *args, "--name", "f",
              check=False)
    assert p.returncode == 1 and "no sample has a description" in p.stderr, p.stderr
    p = lathe("embed", "--dataset", run / "ds", "--run", tmp_path / "missing-run", "-o", tmp_path / "x.npy",
              check=False)
    assert p.returncode == 1 and not (tmp_path / "x.npy").exists()
