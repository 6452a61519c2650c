"""Open-vocabulary detection (experiments/multimodal/open_vocab.yaml): a detector whose class branch
embeds each anchor and scores it against the text encoder's embeddings of class prompts, trained
briefly on `lathe synth` tiles with "crack" held out. Checks the head's text rows against
`lathe embed` of the same prompts, the report's base and novel mAP, `lathe predict --classes` with a
new vocabulary, and clear errors."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from safetensors.numpy import load_file

from fixtures import lathe, needs_text_model

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "multimodal" / "open_vocab.yaml"
pytestmark = needs_text_model
SYNTH = ["--width", "320", "--height", "240", "--defects", "2,3", "--defect-rate", "0.8", "--sensor-fault-rate", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ov")
    lathe("synth", root / "a.tar.zst", "--count", 24, "--seed", 3, *SYNTH)
    lathe("ingest", root / "a.tar.zst", "-o", root / "tiles", "--tile", 128, "--overlap", 32, "--split", "0.6,0.2,0.2")
    lathe("train", SPEC, f"data.dataset={root / 'tiles'}", "train.epochs=2", "train.device=cpu", "--runs",
          root / "runs", "--name", "ov")
    return root


def test_text_rows_are_the_class_prompts(run, tmp_path):
    ck = load_file(str(run / "runs" / "ov" / "checkpoints" / "best.safetensors"))
    text = ck["vocab.text"]
    names = json.loads((run / "tiles" / "manifest.json").read_text())["class_names"]
    assert text.shape == (len(names), 384)
    words = {"good": "a clean part", "scratch": "a thin scratch", "dent": "a shallow dent", "crack": "a jagged crack",
             "missing_hole": "a missing bolt hole", "bearing_wear": "bearing wear", "overheating": "overheating",
             "jam": "a jammed drive"}
    prompts = ["a {} on a metal part", "a photo of a {}", "{}"]
    (tmp_path / "p.txt").write_text("\n".join(p.format(words[n]) for n in names for p in prompts) + "\n")
    lathe("embed", "--text-file", tmp_path / "p.txt", "-o", tmp_path / "p.npy")
    want = np.load(tmp_path / "p.npy").reshape(len(names), 3, 384).mean(1)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.abs(text - want).max() < 1e-5
    assert "vocab.logit_scale" in ck and "vocab.bias" in ck


def test_report_has_base_and_novel_map(run):
    lathe("eval", run / "runs" / "ov", "--split", "test", "--notebook")
    rep = json.loads((run / "runs" / "ov" / "eval" / "report.json").read_text())
    ov = rep["open_vocabulary"]
    assert ov["novel_classes"] == ["crack"]
    for group in ("base", "novel"):
        assert ov[group]["AP"] is None or 0 <= ov[group]["AP"] <= 1
    per_class = {c["name"]: c for c in rep["classes"]}
    base = [per_class[n]["AP"] for n in ("scratch", "dent", "missing_hole") if per_class[n]["AP"] >= 0]
    if base:
        assert ov["base"]["AP"] == pytest.approx(np.mean(base))


def test_predict_with_a_new_vocabulary(run, tmp_path):
    lathe("synth", tmp_path / "new", "--count", 2, "--seed", 9, *SYNTH)
    p = lathe("predict", run / "runs" / "ov", tmp_path / "new" / "images", "--classes", "scratch, dent,oil stain",
              "--conf", "0.001", "-o", tmp_path / "pred")
    dets = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    assert all(0 <= d["category_id"] < 3 for d in dets), p.stdout
    for bad, why in (("a,,b", "empty class name"), ("dent,dent", "twice")):
        q = lathe("predict", run / "runs" / "ov", tmp_path / "new" / "images", "--classes", bad, "-o", tmp_path / "x",
                  check=False)
        assert q.returncode == 1 and why in q.stderr, q.stderr
    q = lathe("predict", run / "runs" / "ov", "--dataset", run / "tiles", "--classes", "dent", check=False)
    assert q.returncode == 2


def test_classes_need_an_open_vocabulary_head(run, tmp_path):
    lathe("train", ROOT / "experiments" / "detect" / "detector_n.yaml", f"data.dataset={run / 'tiles'}",
          "model.input=[3,128,128]", "train.epochs=1", "train.device=cpu", "--runs", tmp_path, "--name", "plain")
    lathe("synth", tmp_path / "new", "--count", 1, "--seed", 9, *SYNTH)
    q = lathe("predict", tmp_path / "plain", tmp_path / "new" / "images", "--classes", "dent", check=False)
    assert q.returncode == 1 and "open-vocabulary" in q.stderr, q.stderr


def test_the_evaluation_notebook_shows_base_and_novel(run):
    """lathe eval --notebook on an open-vocabulary detector: base and novel rows, and the novel class
    named, stored and recomputed alike (test_notebook.py has the other kinds)."""
    from test_notebook import assert_reruns_to_the_same_tables, cell_with, execute, row_dict, tables_of, text_of
    import nbformat
    path = run / "runs" / "ov" / "eval" / "notebook.ipynb"
    if not path.exists():
        lathe("eval", run / "runs" / "ov", "--split", "test", "--notebook")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cell = cell_with(nb, 'report["open_vocabulary"]')
    assert set(row_dict(tables_of(cell)[0])) == {"base", "novel"}
    assert text_of(cell) == "named only in text: crack\n"
    assert_reruns_to_the_same_tables(nb, execute(path))


def test_verdict_threshold_is_chosen_on_val(run, tmp_path):
    """The image-level verdict's score threshold: the best of 0.05 .. 0.95 on the val split's images
    when another split is evaluated, eval.verdict_threshold when the spec sets it, else 0.25."""
    lathe("eval", run / "runs" / "ov", "--split", "test")
    rep = json.loads((run / "runs" / "ov" / "eval" / "report.json").read_text())["image_level"]
    t = rep["score_threshold"]
    assert rep["threshold_from"] == "val" and 0 <= rep["val_accuracy"] <= 1
    assert any(abs(t - k / 20) < 1e-12 for k in range(1, 20))
    copy = tmp_path / "ov"
    shutil.copytree(run / "runs" / "ov", copy)
    val_at = {}
    for cand in sorted({t, 0.05, 0.25, 0.5, 0.95}):  # the spec's threshold, scored on val itself
        cfg = yaml.safe_load((run / "runs" / "ov" / "config.yaml").read_text())
        cfg.setdefault("eval", {})["verdict_threshold"] = cand
        (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
        lathe("eval", copy, "--split", "val")
        v = json.loads((copy / "eval" / "report.json").read_text())["image_level"]
        assert v["threshold_from"] == "spec" and v["score_threshold"] == pytest.approx(cand)
        val_at[cand] = v["accuracy"]
    assert val_at[t] == pytest.approx(rep["val_accuracy"]) and val_at[t] >= max(val_at.values()) - 1e-12
    lathe("eval", run / "runs" / "ov", "--split", "val", "-o", tmp_path / "onval")
    assert json.loads((tmp_path / "onval" / "report.json").read_text())["image_level"]["threshold_from"] == "default"
