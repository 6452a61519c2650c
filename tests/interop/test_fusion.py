"""Image + sensor fusion heads (task: fusion) on make_fusion_set.py's parts, where each modality sees
only some faults: the fused model must beat the image-only and the sensor-only runs (and itself with
either input masked) by a clear margin; photos without a sensor file and windows with a dead
channel are still classified; the report's ablation names the baselines; bad models, data and
options fail clearly; the exporters refuse a two-input model."""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401  (the shards' zstd filter)
import numpy as np
import pytest
from safetensors.numpy import load_file

from fixtures import lathe

ROOT = Path(__file__).resolve().parents[2]
MULTIMODAL = ROOT / "experiments" / "multimodal"
SPEC = MULTIMODAL / "fusion_parts.yaml"
CPU = "train.device=cpu"
SHORT = ("train.epochs=1", "train.warmup_epochs=0", CPU)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fusion")
    subprocess.run([sys.executable, ROOT / "experiments" / "multimodal" / "make_fusion_set.py", root / "src", "--seed", "1",
                    "--dead", "0.1", "--no-sensors", "0.05"], check=True, capture_output=True)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 32, "--split", "0.6,0.2,0.2")
    ds = f"data.dataset={root / 'ds'}"
    for mode in ("image", "sensors"):
        lathe("train", SPEC, ds, CPU, f"fusion.inputs={mode}", "--runs", root / "runs", "--name", mode)
    lathe("train", SPEC, ds, CPU, f"eval.baselines.image={root / 'runs' / 'image'}",
          f"eval.baselines.sensors={root / 'runs' / 'sensors'}", "--runs", root / "runs", "--name", "fused")
    return root


def test_fusion_beats_each_modality_alone(runs):
    p = lathe("eval", runs / "runs" / "fused", "--split", "test")
    rep = json.loads((runs / "runs" / "fused" / "eval" / "report.json").read_text())
    assert rep["task"] == "fusion" and rep["inputs"] == "both" and "image only" in p.stdout
    ab = rep["ablation"]
    fused = ab["fused"]["accuracy"]
    assert fused == pytest.approx(rep["accuracy"])
    assert fused >= 0.8, p.stdout
    for key in ("image", "sensor"):
        assert fused >= ab[key]["accuracy"] + 0.15, (key, ab)  # the same model with the other input masked
        assert fused >= ab[key]["baseline"]["accuracy"] + 0.15, (key, ab)  # a run trained on it alone
    assert ab["image"]["baseline"]["inputs"] == "image" and ab["sensor"]["baseline"]["inputs"] == "sensors"
    ml = rep["multilabel"]
    assert len(ml["classes"]) == 6 and 0 <= ml["map"] <= 1 and ml["map"] > ab["image"]["map"]
    assert all(c["ap"] is None or 0 <= c["ap"] <= 1 for c in ml["classes"])
    assert "Ablation" in (runs / "runs" / "fused" / "eval" / "report.html").read_text()
    norm = json.loads((runs / "runs" / "fused" / "sensor_norm.json").read_text())
    assert norm["channels"] == ["vib", "temperature", "current"] and all(s > 0 for s in norm["std"])
    log = [json.loads(x) for x in (runs / "runs" / "fused" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(e["loss"]) for e in log if "loss" in e)


def test_photos_without_sensors_are_classified_and_counted(runs):
    lathe("eval", runs / "runs" / "fused", "--split", "test")
    rep = json.loads((runs / "runs" / "fused" / "eval" / "report.json").read_text())
    missing = 0
    for shard in sorted((runs / "ds").glob("shard-*.h5")):
        with h5py.File(shard) as f:
            keep = (f["meta"]["split"][:] == 2) & (f["labels"][:] >= 0)
            missing += int((~np.isfinite(f["sensors"][:][keep])).all(axis=(1, 2)).sum())
    assert missing > 0 and rep["samples_without_sensors"] == missing
    assert rep["samples"] == sum(c["support"] for c in rep["classes"])


def test_bad_models_data_and_options_fail_clearly(runs, tmp_path):
    ds = f"data.dataset={runs / 'ds'}"
    no_sensor_input = "model.layers=[{type: conv, out: 8, k: 3}, {type: gap}, {type: linear, out: classes}]"
    cases = [
        ([no_sensor_input], "type: input"),
        (["model.layers=[{type: gap, name: g}, {name: sensors, type: input, shape: [3, 16, 1]}, {type: gap},"
          " {type: concat, from: [g, -1]}, {type: linear, out: classes}]"], "[3, 32, 1]"),
        (["fusion.inputs=video"], "fusion.inputs"),
        (["fusion.modality_dropout.image=0.7", "fusion.modality_dropout.sensors=0.6"], "modality_dropout"),
    ]
    for extra, words in cases:
        p = lathe("train", SPEC, ds, CPU, *extra, "--runs", tmp_path, "--name", "bad", "--overwrite", check=False)
        assert p.returncode != 0 and words in p.stderr, (extra, p.stderr)
    # a dataset without sensor windows
    src = tmp_path / "nosensors"
    subprocess.run([sys.executable, ROOT / "experiments" / "multimodal" / "make_fusion_set.py", src, "--count", "24",
                    "--no-sensors", "1"], check=True, capture_output=True)
    lathe("ingest", src, "-o", tmp_path / "ds2", "--size", 32)
    p = lathe("train", SPEC, f"data.dataset={tmp_path / 'ds2'}", CPU, "--runs", tmp_path, "--name", "nos", check=False)
    assert p.returncode != 0 and "no sensor windows" in p.stderr
    p = lathe("export", runs / "runs" / "fused", "-o", tmp_path / "f.onnx", check=False)
    assert p.returncode != 0 and "no exporter" in p.stderr and not (tmp_path / "f.onnx").exists()


@pytest.mark.parametrize("kind,layer", [("film", "film"), ("attention", "attention")])
def test_film_and_attention_fusion_beat_the_masked_inputs(runs, kind, layer):
    spec = MULTIMODAL / f"fusion_parts_{kind}.yaml"
    lathe("train", spec, f"data.dataset={runs / 'ds'}", CPU, "--runs", runs / "runs", "--name", kind)
    lathe("eval", runs / "runs" / kind, "--split", "test")
    rep = json.loads((runs / "runs" / kind / "eval" / "report.json").read_text())
    ab = rep["ablation"]
    assert ab["fused"]["accuracy"] >= 0.75, ab
    assert ab["fused"]["accuracy"] >= max(ab["image"]["accuracy"], ab["sensor"]["accuracy"]) + 0.1, ab
    summary = lathe("train", spec, "--summary").stdout
    assert f" {layer} " in summary and "sensors" in summary


@pytest.fixture(scope="module")
def line_detector(tmp_path_factory):
    """A one-epoch line_detector.yaml run on a few framed lathe synth photos: (dataset, checkpoint)."""
    root = tmp_path_factory.mktemp("line")
    lathe("synth", root / "src", "--count", 24, "--seed", 3, "--width", 160, "--height", 120,
          "--part-size", "0.4,0.45", "--defect-rate", 0.5, "--sensor-fault-rate", 0.3)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 128, "--split", "0.5,0.5,0")
    lathe("train", MULTIMODAL / "line_detector.yaml", f"data.dataset={root / 'ds'}", *SHORT, "--runs", root / "runs")
    return root / "ds", root / "runs" / "line_detector" / "checkpoints" / "best.safetensors"


@pytest.mark.parametrize("spec", ["fusion", "defects_backbone"])
def test_reference_specs_import_the_line_detectors_backbone(line_detector, spec, tmp_path):
    """fusion.yaml and defects_backbone.yaml (the fusion and image-text specs on lathe synth photos)
    start their image branch from line_detector.yaml's run: every backbone tensor of the detector is
    imported by name and shape, and nothing else."""
    ds, ckpt = line_detector
    p = lathe("train", MULTIMODAL / f"{spec}.yaml", f"data.dataset={ds}", *SHORT, f"train.init={ckpt}",
              "--runs", tmp_path)
    backbone = [n for n in load_file(ckpt) if n.startswith("backbone.")]
    assert len(backbone) > 50, backbone
    assert set(backbone) <= set(load_file(tmp_path / spec / "checkpoints" / "last.safetensors"))
    assert f"imported {len(backbone)} of " in p.stderr, p.stderr
