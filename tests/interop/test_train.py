"""`lathe train` / `lathe eval` on real data: scikit-learn's handwritten digits, written as class
folders, ingested, trained on CPU. Checks the accuracy floor and time limit of the compute-core
issue, bitwise determinism for a seed and thread count, exact resume after SIGINT and after SIGKILL,
and that checkpoints are real safetensors files (read with the Python safetensors package)."""
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from fixtures import LATHE, digits_dataset, lathe

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "classify" / "digits.yaml"


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    digits_dataset(root / "src", root / "ds")
    return root


def train(digits, runs, *overrides, name="digits", check=True, **kw):
    # on the CPU (the bitwise checks are CPU properties) unless an override says otherwise
    return lathe("train", SPEC, f"data.dataset={digits / 'ds'}", "train.device=cpu", *overrides, "--runs", runs, "--name", name,
                 check=check, **kw)


def test_digits_reach_98_5_percent_on_test(digits, tmp_path):
    # the shipped spec as docs/PERFORMANCE.md records it (seed 0, one thread: results are bitwise per
    # thread count); its time (about 15 s on one core) is measured there, not here: a timed test
    # fails on a loaded machine or a sanitizer build and proves nothing about speed
    train(digits, tmp_path, "--threads", "1")
    metrics = json.loads((tmp_path / "digits" / "metrics.json").read_text())
    assert metrics["best_val_accuracy"] >= 0.985, metrics
    log = [json.loads(line) for line in (tmp_path / "digits" / "log.jsonl").read_text().splitlines()]
    assert len(log) == 30 and log[-1]["loss"] < log[0]["loss"]
    p = lathe("eval", tmp_path / "digits", "--split", "test")
    report = json.loads((tmp_path / "digits" / "eval" / "report.json").read_text())
    assert report["accuracy"] >= 0.985 and report["samples"] > 150
    cm = np.array(report["confusion"])
    assert cm.sum() == report["samples"] and np.trace(cm) / cm.sum() == pytest.approx(report["accuracy"])
    assert len(report["classes"]) == 10 and "accuracy" in p.stdout
    assert "data:image/png;base64," in (tmp_path / "digits" / "eval" / "report.html").read_text()
    # the CI gate: against its own report nothing regressed; against a better baseline it exits 3
    base = tmp_path / "baseline.json"
    base.write_text(json.dumps(report))
    assert lathe("eval", tmp_path / "digits", "--split", "test", "--baseline", base).returncode == 0
    report["accuracy"] += 0.05
    base.write_text(json.dumps(report))
    p = lathe("eval", tmp_path / "digits", "--split", "test", "--baseline", base, check=False)
    assert p.returncode == 3 and "accuracy" in p.stderr


def test_checkpoints_are_safetensors(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1")
    ck = load_file(tmp_path / "digits" / "checkpoints" / "last.safetensors")
    assert ck["stem.weight"].shape == (16, 1, 3, 3) and ck["head.weight"].shape == (10, 64)
    assert ck["stem_bn.running_var"].dtype == np.float32
    assert "optim.head.weight.exp_avg" in ck and "optim.head.weight.exp_avg_sq" in ck


def test_same_seed_and_threads_give_identical_weights(digits, tmp_path):
    for name in ("a", "b"):
        train(digits, tmp_path, "train.epochs=2", "--threads", "2", name=name)
    a = (tmp_path / "a" / "checkpoints" / "last.safetensors").read_bytes()
    b = (tmp_path / "b" / "checkpoints" / "last.safetensors").read_bytes()
    assert a == b
    train(digits, tmp_path, "train.epochs=2", "train.seed=1", "--threads", "2", name="c")
    assert (tmp_path / "c" / "checkpoints" / "last.safetensors").read_bytes() != a


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_and_resumed_run_equals_uninterrupted(digits, tmp_path, sig):
    args = ["train.epochs=4", "train.checkpoint_every=7", "train.ema=0.99", "--threads", "2"]
    train(digits, tmp_path, *args, name="whole")
    cmd = [LATHE, "train", str(SPEC), f"data.dataset={digits / 'ds'}", "train.device=cpu", *args, "--runs", str(tmp_path), "--name", "cut"]
    last = tmp_path / "cut" / "checkpoints" / "last.safetensors"
    # a run that ended before the signal would prove determinism, not resume: then again, signalled sooner
    for delay in (0.3, 0.05, 0):
        shutil.rmtree(tmp_path / "cut", ignore_errors=True)
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not last.exists() and p.poll() is None and time.monotonic() < deadline:  # wait for a mid-run checkpoint
            time.sleep(0.05)
        time.sleep(delay)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
        ended = (tmp_path / "cut" / "metrics.json").exists()  # written once the last epoch is done
        if not ended:
            break
    assert not ended, "every run ended before its signal: the test proved nothing"
    # stopped by the signal: SIGINT writes a checkpoint and exits 130, SIGKILL kills; a checkpoint to resume from
    assert p.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL), err.decode()
    assert last.exists()
    log = tmp_path / "cut" / "log.jsonl"
    with open(log, "a") as f:  # a line of an epoch the checkpoint does not hold (its save failed), and a torn one
        f.write('{"epoch": 4, "loss": 9.9}\n{"epoch": 3, "lo')
    p = lathe("train", SPEC, "--resume", "--runs", tmp_path, "--name", "cut", "--threads", "2")
    assert "resuming at epoch" in p.stderr, p.stderr  # from the checkpoint, not from the start
    whole = (tmp_path / "whole" / "checkpoints" / "last.safetensors").read_bytes()
    cut = (tmp_path / "cut" / "checkpoints" / "last.safetensors").read_bytes()
    assert whole == cut, "resumed weights differ"
    # the log is the uninterrupted run's: each epoch once, the resumed epoch's loss over the whole epoch
    timing = ("images_per_s", "seconds", "data_wait_share")
    lines = [{k: v for k, v in json.loads(x).items() if k not in timing} for x in log.read_text().splitlines()]
    expected = [{k: v for k, v in json.loads(x).items() if k not in timing}
                for x in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert lines == expected, (lines, expected)


def test_bad_specs_are_usage_or_clear_errors(digits, tmp_path):
    p = train(digits, tmp_path, "model.layers.0.type=convolution", check=False)
    assert p.returncode == 1 and "unknown type convolution" in p.stderr
    p = train(digits, tmp_path, "notakeyvalue", check=False)
    assert p.returncode == 2
    p = lathe("train", tmp_path / "missing.yaml", check=False)
    assert p.returncode == 1 and "lathe: error:" in p.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    p = lathe("train", bad, check=False)
    assert p.returncode == 1 and "YAML" in p.stderr


def test_device_choice_and_clear_device_errors(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1", "train.device=cpu", name="cpu")
    assert "accuracy" in lathe("eval", tmp_path / "cpu", "--device", "auto").stdout
    p = lathe("eval", tmp_path / "cpu", "--device", "gpu", check=False)
    assert p.returncode == 1 and "cpu, cuda, cuda:N or auto" in p.stderr
    p = train(digits, tmp_path, "train.epochs=1", "train.device=cuda:7", name="gpu", check=False)
    assert p.returncode == 1 and "cuda:7" in p.stderr  # no machine here has eight GPUs
    p = train(digits, tmp_path, "train.epochs=1", "train.precision=bf16", name="bf16", check=False)
    assert p.returncode == 1 and "bf16 runs on a GPU only" in p.stderr
    p = train(digits, tmp_path, "train.epochs=1", "train.device=1", name="one", check=False)
    assert p.returncode == 1 and "train.device must be a string" in p.stderr
    p = train(digits, tmp_path, "train.epochs=1", "train.precision=fp16", name="fp16", check=False)
    assert p.returncode == 1 and "one of: fp32 bf16" in p.stderr


def test_freeze_and_learning_rate_groups(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1", "train.freeze=stem", name="frozen")
    train(digits, tmp_path, "train.epochs=1", "train.lr_groups=[{pattern: 'stem*', lr_scale: 0}]", name="zero_lr")
    train(digits, tmp_path, "train.epochs=1", name="free")
    ck = {n: load_file(tmp_path / n / "checkpoints" / "last.safetensors") for n in ("frozen", "zero_lr", "free")}
    np.testing.assert_array_equal(ck["frozen"]["stem.weight"], ck["zero_lr"]["stem.weight"])  # both the init
    assert not np.array_equal(ck["frozen"]["stem.weight"], ck["free"]["stem.weight"])
    p = train(digits, tmp_path, "train.lr_groups=[{pattern: 'nothing*', lr_scale: 0.1}]", name="bad", check=False)
    assert p.returncode == 1 and "matches no parameter" in p.stderr


def test_nan_guard_skips_steps_then_stops_clearly(digits, tmp_path):
    # a learning rate of 1e30 sends the weights past float range after the first update, so every
    # later gradient is NaN/Inf: each of those steps is skipped and said, and the run stops once
    # more than train.max_nan_steps of them have been skipped
    p = train(digits, tmp_path, "train.lr=1e30", "train.warmup_epochs=0", "train.max_nan_steps=3", "train.epochs=2",
              check=False)
    assert p.returncode == 1, p.stderr
    assert p.stderr.count("gradient is NaN/Inf, step skipped") == 4
    assert "4 steps with NaN/Inf gradients: lower train.lr or check the data" in p.stderr


def test_runs_are_never_replaced_silently(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1", name="r")
    before = (tmp_path / "r" / "checkpoints" / "last.safetensors").read_bytes()
    p = train(digits, tmp_path, "train.epochs=1", "train.seed=5", name="r", check=False)
    assert p.returncode == 1 and "already holds a run" in p.stderr and "--overwrite" in p.stderr
    assert (tmp_path / "r" / "checkpoints" / "last.safetensors").read_bytes() == before
    (tmp_path / "r" / "eval").mkdir()
    (tmp_path / "r" / "eval" / "report.json").write_text("{}")  # a stale report goes with the old run
    train(digits, tmp_path, "train.epochs=1", "train.seed=5", "--overwrite", name="r")
    assert (tmp_path / "r" / "checkpoints" / "last.safetensors").read_bytes() != before
    assert not (tmp_path / "r" / "eval").exists()
    (tmp_path / "notarun").mkdir()
    (tmp_path / "notarun" / "keep.txt").write_text("mine")
    p = train(digits, tmp_path, "train.epochs=1", "--overwrite", name="notarun", check=False)
    assert p.returncode == 1 and "not a lathe run" in p.stderr
    assert (tmp_path / "notarun" / "keep.txt").read_text() == "mine"
    for bad in ("", ".", "..", "../escape", "a/b", "x" * 201):
        p = train(digits, tmp_path, "train.epochs=1", name=bad, check=False)
        assert p.returncode == 2 and "--name" in p.stderr, bad
    assert not (tmp_path.parent / "escape").exists()


def test_resume_checks_the_checkpoint_it_continues(digits, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file
    train(digits, tmp_path, "train.epochs=1", name="r")
    last = tmp_path / "r" / "checkpoints" / "last.safetensors"
    with safe_open(last, "np") as f:
        meta = f.metadata()
    tensors = load_file(last)
    for key, value in (("epoch", "abc"), ("epoch", "-5"), ("epoch", "99999999999"), ("position", "100000"),
                       ("best_metric", "x"), ("epoch", None)):
        m = {k: v for k, v in meta.items() if k != key or value is not None}
        if value is not None:
            m[key] = value
        save_file(tensors, last, metadata=m)
        p = lathe("train", SPEC, "--runs", tmp_path, "--name", "r", "--resume", check=False)
        assert p.returncode == 1 and key in p.stderr and "last.safetensors" in p.stderr, (key, value, p.stderr)
    last.unlink()  # stopped before its first checkpoint: resuming starts over, the log with it
    p = lathe("train", SPEC, "--runs", tmp_path, "--name", "r", "--resume")
    assert "no checkpoint yet" in p.stderr
    assert len((tmp_path / "r" / "log.jsonl").read_text().splitlines()) == 1


def test_weight_import_by_name_shape_and_mapping(digits, tmp_path):
    from safetensors.numpy import save_file
    train(digits, tmp_path, "train.epochs=1", name="src")
    weights = {k: v for k, v in load_file(tmp_path / "src" / "checkpoints" / "last.safetensors").items()
               if not k.startswith("optim.")}

    def init(file, *more, name):
        return train(digits, tmp_path, "train.epochs=1", f"train.init={file}", *more, name=name, check=False)

    p = init(tmp_path / "src" / "checkpoints" / "last.safetensors", name="same")
    assert p.returncode == 0 and f"imported {len(weights)} of" in p.stderr
    renamed = tmp_path / "renamed.safetensors"
    save_file({"backbone." + k: v for k, v in weights.items()}, renamed)
    p = init(renamed, name="unmapped")
    assert p.returncode == 1 and "matches a parameter of the model by name and shape" in p.stderr
    mapping = tmp_path / "map.txt"
    mapping.write_text("# theirs ours\n\n" + "".join(f"backbone.{k} {k}\n" for k in weights))
    p = init(renamed, f"train.init_map={mapping}", name="mapped")
    assert p.returncode == 0 and f"imported {len(weights)} of" in p.stderr
    ck = load_file(tmp_path / "mapped" / "checkpoints" / "best.safetensors")
    assert not np.array_equal(ck["stem.weight"], weights["stem.weight"])  # trained on from the import
    for text, what in (("backbone.stem.weight\n", "line 1"), ("a b c\n", "line 1"),
                       ("backbone.nothing stem.weight\n", "backbone.nothing"), ("backbone.stem.weight nothing\n", "nothing"),
                       ("\x00\x01binary", "not a text file")):
        mapping.write_text(text)
        p = init(renamed, f"train.init_map={mapping}", name="badmap")
        assert p.returncode == 1 and what in p.stderr, (text, p.stderr)
    p = train(digits, tmp_path, "train.epochs=1", f"train.init_map={mapping}", name="maponly", check=False)
    assert p.returncode == 1 and "of train.init, which is not set" in p.stderr
    # the same number of values in another shape: not imported (said), the rest are
    odd = dict(weights)
    odd["head.weight"] = np.ascontiguousarray(weights["head.weight"].T)
    save_file(odd, tmp_path / "odd.safetensors")
    p = init(tmp_path / "odd.safetensors", name="odd")
    assert p.returncode == 0 and "head.weight not imported" in p.stderr and f"imported {len(weights) - 1} of" in p.stderr
    bad = dict(weights)
    bad["stem.weight"] = bad["stem.weight"].copy()
    bad["stem.weight"].flat[3] = np.nan
    save_file(bad, tmp_path / "nan.safetensors")
    p = init(tmp_path / "nan.safetensors", name="nan")
    assert p.returncode == 1 and "NaN or Inf" in p.stderr
    # a checkpoint whose tensor has another shape is refused where a whole model is loaded
    whole = load_file(tmp_path / "src" / "checkpoints" / "best.safetensors")
    whole["head.weight"] = np.ascontiguousarray(whole["head.weight"].T)
    save_file(whole, tmp_path / "src" / "checkpoints" / "transposed.safetensors")
    p = lathe("eval", tmp_path / "src", "--checkpoint", tmp_path / "src" / "checkpoints" / "transposed.safetensors", check=False)
    assert p.returncode == 1 and "head.weight is [" in p.stderr, p.stderr


def test_spec_keys_kinds_and_ranges_are_checked(digits, tmp_path):
    for override, says in (("train.lr=abc", "train.lr must be a number"), ("train.epochs=1.9", "whole number"),
                           ("train.optimizer=1", "one of: adamw sgd"), ("train.lrr=1", "unknown spec key train.lrr"),
                           ("data.augment.flipp=1", "unknown spec key data.augment.flipp"), ("train.lr=-1", "train.lr"),
                           ("train.label_smoothing=5", "train.label_smoothing"), ("a.b=1", "unknown spec key a"),
                           # a key another task reads would be ignored here: refused, naming who reads it
                           ("data.augment.mosaic=1", "data.augment.mosaic is read only by the tasks: detect (this "
                                                     "spec's task is classify: it would be ignored)"),
                           ("data.augment.hsv_v=0.4", "read only by the tasks: detect")):
        p = train(digits, tmp_path, "train.epochs=1", override, name="bad", check=False)
        assert p.returncode == 1 and says in p.stderr, (override, p.stderr)
        assert not (tmp_path / "bad").exists()  # refused before anything was written
    p = train(digits, tmp_path, "train.epochs=1", "task=anomaly", name="bad", check=False)  # digits.yaml crops
    assert p.returncode == 1 and "crop is read only by the tasks: classify contrastive fusion (this spec's task is " \
                                 "anomaly" in p.stderr, p.stderr
    # found when the model is built: the run stopped at its setup, so the next try replaces it
    for override, says in (("model.layers.0.kernel=5", "conv takes no argument kernel"),
                           ("model.layers.0.out=2.5", "out must be a whole number"), ("model.classes=3", "has 10 classes")):
        p = train(digits, tmp_path, "train.epochs=1", override, name="bad", check=False)
        assert p.returncode == 1 and says in p.stderr, (override, p.stderr)
    p = train(digits, tmp_path, "train.=1", name="bad", check=False)
    assert p.returncode == 2 and "empty part" in p.stderr


def test_freezing_everything_is_an_error(digits, tmp_path):
    p = train(digits, tmp_path, "train.epochs=1", "train.freeze=*", name="all", check=False)
    assert p.returncode == 1 and "leaves no parameter to train" in p.stderr


def test_a_detector_needs_boxes_to_train_on(digits, tmp_path):
    # the digits are class folders: labels, not a single box
    p = lathe("train", ROOT / "experiments" / "ci" / "detect.yaml", f"data.dataset={digits / 'ds'}", "train.epochs=1",
              "--runs", tmp_path, check=False)
    assert p.returncode == 1 and "holds no box to train a detector on" in p.stderr


def test_eval_checks_a_hand_edited_config(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1", name="r")
    cfg = tmp_path / "r" / "config.yaml"
    cfg.write_text(cfg.read_text().replace('"batch": 32', '"batch": "many"'))
    p = lathe("eval", tmp_path / "r", check=False)
    assert p.returncode == 1 and "train.batch must be a whole number" in p.stderr, p.stderr


def test_resume_needs_not_the_file_it_was_initialized_from(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1", name="src")
    init = tmp_path / "init.safetensors"
    init.write_bytes((tmp_path / "src" / "checkpoints" / "last.safetensors").read_bytes())
    train(digits, tmp_path, "train.epochs=1", f"train.init={init}", name="r")
    init.unlink()
    cfg = tmp_path / "r" / "config.yaml"
    cfg.write_text(cfg.read_text().replace('"epochs": 1', '"epochs": 2'))  # one more epoch
    p = lathe("train", SPEC, "--runs", tmp_path, "--name", "r", "--resume")
    assert "resuming at epoch 2" in p.stderr


def test_flags_nulls_and_unusable_checkpoints(digits, tmp_path):
    def params(*overrides):
        out = lathe("train", SPEC, f"data.dataset={digits / 'ds'}", *overrides, "--summary").stdout
        return int(out.split("parameters: ")[1].split()[0])
    # a layer flag as true/false means what 1/0 means
    assert params("model.layers.0.bias=false") == params("model.layers.0.bias=0") < params("model.layers.0.bias=true")
    # `~` unsets a key, also one a base spec sets: the default applies
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {SPEC}\ntrain:\n  init: ~\n  lr: ~\ndata:\n  augment: ~\n")
    p = lathe("train", child, f"data.dataset={digits / 'ds'}", "train.epochs=1", "--runs", tmp_path, "--name", "c")
    written = (tmp_path / "c" / "config.yaml").read_text()
    assert '"lr":' not in written and '"init":' not in written and '"augment":' not in written
    assert '"epochs": 1' in written
    # checkpoints a model cannot run with, and files that are not files
    from safetensors.numpy import save_file
    weights = load_file(tmp_path / "c" / "checkpoints" / "best.safetensors")
    weights["head.bias"] = weights["head.bias"].copy()
    weights["head.bias"][0] = np.nan
    save_file(weights, tmp_path / "nan.safetensors")
    p = lathe("eval", tmp_path / "c", "--checkpoint", tmp_path / "nan.safetensors", check=False)
    assert p.returncode == 1 and "head.bias holds NaN or Inf values" in p.stderr
    os.mkfifo(tmp_path / "fifo.safetensors")
    p = lathe("eval", tmp_path / "c", "--checkpoint", tmp_path / "fifo.safetensors", check=False, timeout=60)
    assert p.returncode == 1 and "not a regular file" in p.stderr


def test_eval_says_what_is_missing_before_working(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1", "train.nesterov=1", "train.optimizer=sgd", name="r")
    (tmp_path / "afile").write_text("")
    p = lathe("eval", tmp_path / "r", "-o", tmp_path / "afile" / "out", check=False)
    assert p.returncode == 1 and "cannot write to" in p.stderr
    (tmp_path / "r" / "checkpoints" / "best.safetensors").unlink()
    p = lathe("eval", tmp_path / "r", check=False)
    assert p.returncode == 1 and "--checkpoint last" in p.stderr
    assert "accuracy" in lathe("eval", tmp_path / "r", "--checkpoint", "last").stdout


def test_resume_needs_no_spec_file(digits, tmp_path):
    train(digits, tmp_path, "train.epochs=1", name="r")
    cfg = tmp_path / "r" / "config.yaml"
    cfg.write_text(cfg.read_text().replace('"epochs": 1', '"epochs": 2'))
    p = lathe("train", "--resume", "--name", "r", "--runs", tmp_path)
    assert "resuming at epoch 2" in p.stderr
    p = lathe("train", "--resume", "--name", "r", "--runs", tmp_path, "train.lr=1", check=False)
    assert p.returncode == 2 and "no key=value overrides" in p.stderr
