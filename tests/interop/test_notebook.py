"""`lathe notebook` and --notebook: every kind of notebook (training run, detector evaluation, classifier
evaluation, dataset analysis, a comparison of runs, the read-only form) passes nbformat.validate, renders
from its stored outputs, and executes top to bottom with nbconvert's ExecutePreprocessor; the tables it stores and the tables
its code recomputes hold the numbers of lathe's own files. Missing and corrupt files fail with their name."""
import base64
import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbconvert.preprocessors import ExecutePreprocessor
from PIL import Image

from fixtures import digits_dataset, lathe
from test_detect import shapes_source, write_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A detector run (evaluated), a second run with another learning rate, a digits classifier
    (evaluated) and a dataset analysis."""
    root = tmp_path_factory.mktemp("notebook")
    shapes_source(root / "src", 32, 2, seed=5)
    lathe("ingest", root / "src", "-o", root / "ds", "--size", 64, "--split", "0.75,0.25,0")
    spec = write_spec(root / "spec.yaml", root / "ds", epochs=6)
    lathe("train", spec, "data.val_split=val", "--runs", root / "runs", "--name", "det", "--threads", 2)
    lathe("train", spec, "data.val_split=val", "train.epochs=2", "train.lr=0.002", "--runs", root / "runs",
          "--name", "det-slow", "--threads", 2)
    lathe("eval", root / "runs" / "det", "--split", "val")
    lathe("analyze", root / "ds", "-o", root / "analysis")
    digits_dataset(root / "digits-src", root / "digits")
    lathe("train", ROOT / "experiments" / "classify" / "digits.yaml", f"data.dataset={root / 'digits'}",
          "train.epochs=2", "train.device=cpu", "--runs", root / "runs", "--name", "digits", "--threads", 2)
    lathe("eval", root / "runs" / "digits", "--split", "test")
    return root


class Tables(HTMLParser):
    """The body rows of every <table> in an HTML text: [[index, value, ...], ...] per table."""

    def __init__(self, html):
        super().__init__()
        self.tables, self.row, self.cell, self.body = [], None, None, False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tbody":
            self.body = True
        elif tag == "tr" and self.body:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[-1].append(self.row)
            self.row = None
        elif tag == "tbody":
            self.body = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def same_value(a, b):
    missing = {"NaN", "nan", "None", ""}
    if a in missing or b in missing:
        return a in missing and b in missing
    try:
        x, y = float(a), float(b)
        return math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-5)
    except ValueError:
        norm = lambda s: s.replace('"', "").replace("'", "").replace(" ", "")
        return norm(a) == norm(b)


def tables_of(cell):
    html = ["".join(o["data"]["text/html"]) if isinstance(o["data"]["text/html"], list) else o["data"]["text/html"]
            for o in cell.get("outputs", []) if "text/html" in o.get("data", {})]
    return [t for h in html for t in Tables(h).tables]


def text_of(cell):
    return "".join("".join(o["text"]) for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def images_of(cell):
    return [base64.b64decode(o["data"]["image/png"]) for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]


def notebook(*paths, out, extra=()):
    lathe("notebook", *paths, "-o", out, *extra)
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    return nb


def execute(path):
    nb = nbformat.read(path, as_version=4)
    ExecutePreprocessor(timeout=300, kernel_name="python3").preprocess(nb, {"metadata": {"path": str(Path(path).parent)}})
    return nb


def assert_reruns_to_the_same_tables(stored, executed):
    """Every table and printed text the notebook stores is what its code computes again."""
    assert len(stored.cells) == len(executed.cells)
    compared = 0
    for s, e in zip(stored.cells, executed.cells):
        if s.cell_type != "code":
            continue
        assert not [o for o in e.outputs if o.output_type == "error"]
        for ts, te in zip(tables_of(s), tables_of(e)):
            assert len(ts) == len(te), (s.source, ts, te)
            for rs, re_ in zip(ts, te):
                assert len(rs) == len(re_) and all(same_value(a, b) for a, b in zip(rs, re_)), (s.source, rs, re_)
            compared += 1
        assert len(tables_of(s)) == len(tables_of(e)), s.source
        if text_of(s):
            assert text_of(s) == text_of(e)
        assert bool(images_of(s)) == bool(images_of(e)), s.source
    assert compared >= 2


def cell_with(nb, text):
    return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)


def row_dict(table):
    return {r[0]: r[1:] for r in table}


def test_run_notebook_renders_and_reruns(made, tmp_path):
    run = made / "runs" / "det"
    out = tmp_path / "nb" / "det.ipynb"
    nb = notebook(run, out=out)
    metrics = json.loads((run / "metrics.json").read_text())
    stored = row_dict(tables_of(cell_with(nb, "metrics.json"))[0])
    assert set(stored) == set(metrics)
    assert all(same_value(stored[k][0], str(v)) for k, v in metrics.items())
    assert text_of(cell_with(nb, "config.yaml")) == (run / "config.yaml").read_text()
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    epochs = tables_of(cell_with(nb, "log.jsonl"))[0]
    assert [float(r[0]) for r in epochs] == [e["epoch"] for e in log]
    assert len(images_of(cell_with(nb, "is_validation"))) == 2  # loss, validation
    assert 'Path("../../' in cell_with(nb, "RUN = Path").source  # relative to the notebook's folder
    # the run's eval/ folder comes with it: the detector's report
    report = json.loads((run / "eval" / "report.json").read_text())
    coco = row_dict(tables_of(cell_with(nb, 'report["metrics"]'))[0])
    assert all(same_value(coco[k][0], str(v)) for k, v in report["metrics"].items())
    classes = row_dict(tables_of(cell_with(nb, "best_f1_threshold"))[0])
    assert [same_value(classes[c["name"]][0], str(c["AP"])) for c in report["classes"]] == [True] * len(report["classes"])
    for marker in ("pr_curve_iou50", 'report["confusion"]', "AP per class"):
        assert images_of(cell_with(nb, marker)), marker
    assert_reruns_to_the_same_tables(nb, execute(out))


def test_classifier_evaluation_notebook(made, tmp_path):
    ev = made / "runs" / "digits" / "eval"
    out = tmp_path / "digits.ipynb"
    nb = notebook(ev / "report.json", out=out)  # a report.json stands for its folder
    report = json.loads((ev / "report.json").read_text())
    summary = row_dict(tables_of(cell_with(nb, 'report["accuracy"]'))[0])
    assert same_value(summary["accuracy"][0], str(report["accuracy"]))
    per_class = row_dict(tables_of(cell_with(nb, 'set_index("name")'))[0])
    assert set(per_class) == {c["name"] for c in report["classes"]}
    assert images_of(cell_with(nb, "Confusion matrix"))
    assert_reruns_to_the_same_tables(nb, execute(out))


def test_analysis_notebook_has_every_chart_and_reruns(made, tmp_path):
    an = made / "analysis"
    out = tmp_path / "analysis.ipynb"
    nb = notebook(an, out=out)
    analysis = json.loads((an / "analysis.json").read_text())
    splits = row_dict(tables_of(cell_with(nb, 'analysis["splits"]'))[0])
    assert {k: int(v[0]) for k, v in splits.items()} == {k: s["samples"] for k, s in analysis["splits"].items()}
    findings = row_dict(tables_of(cell_with(nb, 'analysis["findings"]'))[0])
    assert {k: int(v[0]) for k, v in findings.items()} == {k: f["count"] for k, f in analysis["findings"].items()}
    stored_pngs = [p for c in nb.cells if "h5py.File" not in c.source for p in images_of(c)]
    on_disk = sorted(p.read_bytes() for p in (an / "plots").glob("*.png"))
    assert sorted(stored_pngs) == on_disk  # the charts lathe analyze drew, each once
    strip = images_of(cell_with(nb, "h5py.File"))  # and the first samples, read by lathe
    assert len(strip) == 1 and strip[0].startswith(b"\x89PNG")
    (tmp_path / "strip.png").write_bytes(strip[0])
    executed = execute(out)
    assert_reruns_to_the_same_tables(nb, executed)
    assert images_of(cell_with(executed, "h5py.File"))  # samples read back from the shards


def test_several_runs_are_compared(made, tmp_path):
    runs = made / "runs"
    out = tmp_path / "compare.ipynb"
    nb = notebook(runs / "det", runs / "det-slow", out=out)
    assert "Comparing 2 runs" in nb.cells[0].source
    diff = row_dict(tables_of(cell_with(nb, "def flatten"))[0])
    assert same_value(diff["train.lr"][0], "0.004") and same_value(diff["train.lr"][1], "0.002")
    assert same_value(diff["train.epochs"][0], "6") and same_value(diff["train.epochs"][1], "2")
    assert "train.batch" not in diff  # only what differs
    side = row_dict(tables_of(cell_with(nb, "metrics_of(run)"))[0])
    assert set(side) == {"det", "det-slow"}
    assert len(images_of(cell_with(nb, "logs[name]"))) == 2
    assert_reruns_to_the_same_tables(nb, execute(out))


def test_names_that_stress_the_notebook_rerun_to_the_same_tables(made, tmp_path):
    """Class and run names a user may have: two $ signs (matplotlib read them as mathtext and the
    rerun failed), 40 accented letters (cut inside a character: the file was no UTF-8), a long name
    (cut at 63 bytes), non-ASCII spec values (json.dumps escaped them on rerun), more than 60 classes
    (pandas showed 10 of them on rerun); an analysis written into a notebook from another folder
    (its dataset was looked up from the notebook command's folder)."""
    names = ["$x^$", "é" * 40, "a" * 70 + "END"] + [f"c{i:02d}" for i in range(62)]
    root = tmp_path / "src"
    (root / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(4):
        Image.new("RGB", (200, 160), (90 + 20 * i, 90, 90)).save(root / "images" / f"im{i}.png")
        images.append({"id": i + 1, "file_name": f"im{i}.png", "width": 200, "height": 160})
        for k in range(len(names)):
            x, y = 12 * (k % 16), 12 * (k // 16) + i
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": k + 1, "bbox": [x, y, 8, 8],
                         "area": 64, "iscrowd": 0})
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(names)]}
    (root / "annotations.json").write_text(json.dumps(coco, ensure_ascii=False), encoding="utf-8")
    # a detector's evaluation of 65 classes
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.9} for a in anns]
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    lathe("eval", "--detections", tmp_path / "dets.json", "--gt", root / "annotations.json", "-o", tmp_path / "ev")
    nb = notebook(tmp_path / "ev", out=tmp_path / "ev.ipynb")
    (tmp_path / "ev.ipynb").read_text(encoding="utf-8")  # valid UTF-8
    assert all(n in str(nb) for n in names)
    assert_reruns_to_the_same_tables(nb, execute(tmp_path / "ev.ipynb"))
    # an analysis of those classes, written from another folder than analyze ran in
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    lathe("ingest", root, "-o", tmp_path / "here" / "ds", "--size", 64, "--split", "1,0,0")
    lathe("analyze", "ds", "-o", "an", cwd=tmp_path / "here")
    lathe("notebook", "../here/an", "-o", "an.ipynb", cwd=tmp_path / "elsewhere")
    nb = nbformat.read(tmp_path / "elsewhere" / "an.ipynb", as_version=4)
    assert 'DATASET = Path("../here/ds")' in cell_with(nb, "DATASET = Path").source  # from the notebook's folder
    assert_reruns_to_the_same_tables(nb, execute(tmp_path / "elsewhere" / "an.ipynb"))
    # two runs whose specs differ in a non-ASCII value
    shutil.copytree(made / "runs" / "det", tmp_path / "runs" / "dét")
    config = tmp_path / "runs" / "dét" / "config.yaml"
    text = config.read_text(encoding="utf-8")
    assert '  - "bar"\n' in text
    config.write_text(text.replace('  - "bar"\n', '  - "bär café"\n'), encoding="utf-8")
    nb = notebook(made / "runs" / "det", tmp_path / "runs" / "dét", out=tmp_path / "cmp.ipynb")
    assert "bär café" in str(nb)
    assert_reruns_to_the_same_tables(nb, execute(tmp_path / "cmp.ipynb"))


def test_a_run_still_training_or_stopped_has_a_notebook(made, tmp_path):
    """No metrics.json yet (training runs, or was stopped): the notebook says so and shows the log so far."""
    run = tmp_path / "run"
    shutil.copytree(made / "runs" / "det", run, ignore=shutil.ignore_patterns("eval", "metrics.json"))
    other = tmp_path / "other"
    shutil.copytree(made / "runs" / "det-slow", other)
    out = tmp_path / "nb.ipynb"
    nb = notebook(run, other, out=out)
    assert any("No `metrics.json` yet" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert tables_of(cell_with(nb, "read_json(RUN"))
    side = row_dict(tables_of(cell_with(nb, "metrics_of(run)"))[0])
    assert set(side["run"]) == {"NaN"}
    assert_reruns_to_the_same_tables(nb, execute(out))


def test_epochs_past_a_steps_precision_draw_in_bounded_time(made, tmp_path):
    """A log whose epochs are near 2^53 (8.8e15: a step of 0.2 no longer moves a double there)
    hung the chart's tick loop for good; found by the notebook fuzz target. Ticks are now counted
    from their index and end where a value stops growing."""
    run = tmp_path / "run"
    shutil.copytree(made / "runs" / "det", run)
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    for k, line in enumerate(lines):
        line["epoch"] = 8808888888888881 + k
    (run / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines[:1]))
    lathe("notebook", run, "-o", tmp_path / "one.ipynb", timeout=120)
    (run / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    lathe("notebook", run, "-o", tmp_path / "all.ipynb", timeout=120)
    nbformat.validate(nbformat.read(tmp_path / "all.ipynb", as_version=4))


def test_read_only_notebook_and_absolute_paths(made, tmp_path):
    nb = notebook(made / "runs" / "det", out=tmp_path / "ro.ipynb", extra=("--no-code",))
    assert {c.cell_type for c in nb.cells} == {"markdown"}
    attached = [c for c in nb.cells if c.get("attachments")]
    assert attached and all("attachment:" in c.source for c in attached)
    assert any("<table" in c.source for c in nb.cells)
    nb = notebook(made / "analysis", out=tmp_path / "abs.ipynb", extra=("--absolute",))
    assert f'Path("{(made / "analysis").resolve()}")' in cell_with(nb, "ANALYSIS = Path").source
    moved = tmp_path / "elsewhere" / "abs.ipynb"
    moved.parent.mkdir()
    shutil.move(tmp_path / "abs.ipynb", moved)
    execute(moved)  # absolute paths: runs from anywhere


def test_notebook_options_of_train_eval_and_analyze(made, tmp_path):
    spec = made / "spec.yaml"
    lathe("train", spec, "train.epochs=1", "--runs", tmp_path, "--name", "r", "--threads", 2, "--notebook")
    lathe("eval", tmp_path / "r", "--split", "val", "--notebook")
    lathe("analyze", made / "ds", "-o", tmp_path / "an", "--notebook")
    for path in (tmp_path / "r" / "notebook.ipynb", tmp_path / "r" / "eval" / "notebook.ipynb",
                 tmp_path / "an" / "notebook.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert 'Path(".")' in nb.cells[1].source  # beside the files it reads
    execute(tmp_path / "an" / "notebook.ipynb")


def test_missing_and_corrupt_files_are_named(made, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(made / "runs" / "det", run)
    (run / "log.jsonl").unlink()
    p = lathe("notebook", run, "-o", tmp_path / "x.ipynb", check=False)
    assert p.returncode == 1 and "log.jsonl is missing" in p.stderr
    shutil.copy(made / "runs" / "det" / "log.jsonl", run)
    with open(run / "log.jsonl", "a") as f:
        f.write('{"epoch": 7, "loss": 1.5')  # a line cut short
    p = lathe("notebook", run, "-o", tmp_path / "x.ipynb", check=False)
    assert p.returncode == 1 and "log.jsonl line" in p.stderr and "not a JSON object" in p.stderr
    (run / "eval" / "report.json").write_text('{"metrics": {"AP": 0.5')
    shutil.copy(made / "runs" / "det" / "log.jsonl", run)
    (run / "metrics.json").write_text("{")
    p = lathe("notebook", run, "-o", tmp_path / "x.ipynb", check=False)
    assert p.returncode == 1 and "metrics.json is not valid JSON" in p.stderr
    (run / "metrics.json").unlink()
    p = lathe("notebook", run, "-o", tmp_path / "x.ipynb", check=False)
    assert p.returncode == 1 and "report.json is not valid JSON" in p.stderr
    an = tmp_path / "an"
    shutil.copytree(made / "analysis", an)
    next((an / "plots").glob("*.png")).unlink()
    p = lathe("notebook", an, "-o", tmp_path / "x.ipynb", check=False)
    assert p.returncode == 1 and "plots/" in p.stderr and "missing" in p.stderr
    p = lathe("notebook", made / "ds", "-o", tmp_path / "x.ipynb", check=False)
    assert p.returncode == 1 and "not a lathe training run, evaluation or analysis folder" in p.stderr
    assert not (tmp_path / "x.ipynb").exists()
    keep = tmp_path / "keep.json"
    keep.write_text('{"mine": 1}')
    p = lathe("notebook", made / "analysis", "-o", keep, check=False)
    assert p.returncode == 1 and "not a notebook" in p.stderr and keep.read_text() == '{"mine": 1}'
    assert lathe("notebook", "-o", tmp_path / "x.ipynb", check=False).returncode == 2
    assert lathe("notebook", made / "analysis", check=False).returncode == 2
