"""`lathe analyze` checked from outside. A synthetic archive gets planted copies (byte-identical,
re-encoded, slightly cropped, brightness-shifted); after ingest, the duplicate, near-duplicate and
leakage groups must be exactly the planted families (read back with h5py to know each sample's
source and split), and nothing else. The statistics of analysis.json are recomputed with numpy from
the pixels, boxes and sensors h5py reads. A corrupt chunk is reported, not crashed on; --fail-on
exits 3; --compare reports shifts; the HTML report loads in headless Chromium with every plot."""
import io
import json
import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from fixtures import lathe, read_dataset, reseal_shard

SPLITS = ["train", "val", "test"]
ORIGINALS = 8  # planted families


def plant_copies(src):
    """Adds copies of ORIGINALS images to a synth folder; returns {copy file: (original file, kind)}."""
    coco = json.loads((src / "annotations.json").read_text())
    by_id = {im["id"]: im for im in coco["images"]}
    anns = defaultdict(list)
    for a in coco["annotations"]:
        anns[a["image_id"]].append(a)
    originals = [im for im in coco["images"] if im["file_name"].endswith("_v1.jpg")][:ORIGINALS]
    kinds = [["exact"], ["reencode"], ["crop"], ["bright"], ["reencode", "exact"], ["crop", "bright"],
             ["dark"], ["reencode", "crop", "bright"]]
    planted, next_id, next_ann = {}, max(by_id) + 1, max(a["id"] for a in coco["annotations"]) + 1
    for im, family in zip(originals, kinds):
        path = src / "images" / im["file_name"]
        stem = Path(im["file_name"]).stem
        pic = Image.open(path).convert("RGB")
        w, h = pic.size
        for k, kind in enumerate(family):
            name = f"copy{k}_{stem}.jpg"
            dx = dy = 0
            if kind == "exact":
                data = path.read_bytes()
            else:
                out = pic
                if kind == "crop":  # 2% off each side
                    dx, dy = int(w * 0.02), int(h * 0.02)
                    out = pic.crop((dx, dy, w - dx, h - dy))
                elif kind in ("bright", "dark"):
                    shift = 25 if kind == "bright" else -25
                    out = Image.fromarray(np.clip(np.asarray(pic).astype(int) + shift, 0, 255).astype(np.uint8))
                buf = io.BytesIO()
                out.save(buf, "JPEG", quality=70 if kind == "reencode" else 92)
                data = buf.getvalue()
                w2, h2 = out.size
            (src / "images" / name).write_bytes(data)
            for side in ("sensors", "text"):
                ext = ".csv" if side == "sensors" else ".txt"
                shutil.copy(src / side / f"{stem}{ext}", src / side / f"copy{k}_{stem}{ext}")
            entry = dict(im, id=next_id, file_name=name)
            if kind != "exact":
                entry["width"], entry["height"] = w2, h2
            coco["images"].append(entry)
            for a in anns[im["id"]]:
                x, y, bw, bh = a["bbox"]
                x, y = max(x - dx, 0), max(y - dy, 0)
                bw = min(bw, entry["width"] - x)
                bh = min(bh, entry["height"] - y)
                coco["annotations"].append(dict(a, id=next_ann, image_id=next_id, bbox=[x, y, bw, bh]))
                next_ann += 1
            planted["images/" + name] = ("images/" + im["file_name"], kind)
            next_id += 1
    (src / "annotations.json").write_text(json.dumps(coco))
    return planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    src = root / "src"
    lathe("synth", src, "--count", 90, "--seed", 11, "--width", 320, "--height", 240)
    copies = plant_copies(src)
    ds = root / "ds"
    lathe("ingest", src, "-o", ds, "--size", 192, "--shard-size", 40)
    out = root / "report"
    p = lathe("analyze", ds, "-o", out)
    manifest, samples = read_dataset(ds)
    return {"root": root, "ds": ds, "out": out, "copies": copies, "samples": samples, "manifest": manifest,
            "analysis": json.loads((out / "analysis.json").read_text()), "stdout": p.stdout}


def source_of(s):
    v = s["meta"]["source"]
    return v.decode() if isinstance(v, bytes) else v


def groups_of(analysis, kind):
    return sorted(sorted(g["samples"]) for g in analysis["findings"][kind]["groups"])


def test_planted_duplicates_and_leaks_are_found_and_nothing_else(planted):
    index = {source_of(s): i for i, s in enumerate(planted["samples"])}
    families = defaultdict(set)
    for copy, (orig, kind) in planted["copies"].items():
        families[orig].update({index[orig], index[copy]})
    exact = defaultdict(set)
    for copy, (orig, kind) in planted["copies"].items():
        if kind == "exact":
            exact[orig].update({index[orig], index[copy]})
    near = [fam for orig, fam in families.items()
            if any(k != "exact" for c, (o, k) in planted["copies"].items() if o == orig)]
    split = [s["split"] for s in planted["samples"]]
    leaks = [fam for fam in families.values() if len({split[i] for i in fam}) > 1]
    a = planted["analysis"]
    assert groups_of(a, "duplicate") == sorted(sorted(g) for g in exact.values())
    assert groups_of(a, "near-duplicate") == sorted(sorted(g) for g in near)
    assert leaks, "the planted copies should straddle splits (change the seed or the names)"
    assert groups_of(a, "leakage") == sorted(sorted(g) for g in leaks)
    assert a["findings"]["leakage"]["count"] == sum(len(g) for g in leaks)
    for g in a["findings"]["leakage"]["groups"]:
        assert sorted(g["splits"]) == sorted({split[i] for i in g["samples"]}, key=SPLITS.index) or \
            set(g["splits"]) == {split[i] for i in g["samples"]}
    assert "leakage" in planted["stdout"]


def content_rect(meta, h, w):
    """lathe's content rectangle (image_stats.c): lround, then clamp."""
    def r(v):
        return int(np.floor(v + 0.5)) if v >= 0 else -int(np.floor(-v + 0.5))
    x0 = r(meta["pad_x"] - meta["tile_x"] * meta["scale_x"])
    y0 = r(meta["pad_y"] - meta["tile_y"] * meta["scale_y"])
    x1 = r(meta["pad_x"] + (meta["orig_width"] - meta["tile_x"]) * meta["scale_x"])
    y1 = r(meta["pad_y"] + (meta["orig_height"] - meta["tile_y"]) * meta["scale_y"])
    return max(0, min(x0, w)), max(0, min(y0, h)), max(0, min(x1, w)), max(0, min(y1, h))


def image_measures(s):
    img = s["image"]
    x0, y0, x1, y1 = content_rect(s["meta"], *img.shape[:2])
    px = img[y0:y1, x0:x1].astype(np.float32)
    y = np.float32(0.299) * px[..., 0] + np.float32(0.587) * px[..., 1] + np.float32(0.114) * px[..., 2]
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - np.float32(4) * y[1:-1, 1:-1]
    y64, lap64 = y.astype(np.float64), lap.astype(np.float64)
    return {"brightness": y64.mean(), "contrast": y64.std(), "sharpness": lap64.var(),
            "red": px[..., 0].astype(np.float64).mean(), "bright_share": (y >= 250).mean()}


def check_summary(summary, values, rel=1e-4):
    """A summary (docs/FORMAT.md) holds every one of its eight statistics, each equal to numpy's."""
    values = np.asarray(values, dtype=np.float64)
    want = {"count": len(values), "mean": values.mean(), "std": values.std(), "min": values.min(),
            "max": values.max(), "median": np.percentile(values, 50), "p05": np.percentile(values, 5),
            "p95": np.percentile(values, 95)}
    assert set(want) <= set(summary), f"the summary lacks {sorted(set(want) - set(summary))}"
    for k, v in want.items():
        assert summary[k] == pytest.approx(v, rel=rel, abs=1e-6), f"{k}: {summary[k]} != {v}"


def test_image_statistics_equal_numpy(planted):
    a, samples = planted["analysis"], planted["samples"]
    measures = [image_measures(s) for s in samples]
    for key in ("brightness", "contrast", "sharpness", "red", "bright_share"):
        check_summary(a["images"][key], [m[key] for m in measures])
        for sp in SPLITS:
            vals = [m[key] for m, s in zip(measures, samples) if s["split"] == sp]
            if vals:
                check_summary(a["images"]["per_split"][sp][key], vals)
    hist = a["images"]["brightness"]["histogram"]
    assert sum(hist["counts"]) == len(samples) and len(hist["edges"]) == len(hist["counts"]) + 1


def test_box_and_label_statistics_equal_numpy(planted):
    a, samples, m = planted["analysis"], planted["samples"], planted["manifest"]
    names = m["class_names"]
    per_class = defaultdict(list)
    sizes = defaultdict(lambda: [0, 0, 0])
    images = defaultdict(lambda: defaultdict(int))
    cooc = np.zeros((len(names), len(names)), dtype=int)
    for s in samples:
        meta = s["meta"]
        present = set()
        if s["label"] >= 0:
            present.add(s["label"])
        for b, lab in zip(s["boxes"], s["box_labels"]):
            w = (b[2] - b[0]) / meta["scale_x"]
            h = (b[3] - b[1]) / meta["scale_y"]
            per_class[int(lab)].append((w, h, w * h))
            area = w * h
            sizes[int(lab)][0 if area < 32 ** 2 else 1 if area < 96 ** 2 else 2] += 1
            present.add(int(lab))
        for k in present:
            images[k][s["split"]] += 1
            for j in present:
                cooc[k, j] += 1
    assert a["cooccurrence"]["counts"] == cooc.tolist()
    for c in a["classes"]:
        k = c["index"]
        assert c["name"] == names[k]
        for sp in SPLITS:
            assert c["images"][sp] == images[k][sp]
        boxes = np.array(per_class[k], dtype=np.float64).reshape(-1, 3)
        st = c["box_stats"]
        assert st["width"]["count"] == len(boxes)
        if len(boxes):
            for col, key in enumerate(["width", "height", "area"]):
                for stat, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
                    assert st[key][stat] == pytest.approx(fn(boxes[:, col]), rel=1e-4)
        assert [st["sizes"][z] for z in ("small", "medium", "large")] == sizes[k]
    check_summary(a["boxes"]["per_image"], [len(s["boxes"]) for s in samples])
    assert a["boxes"]["count"]["total"] == sum(len(s["boxes"]) for s in samples)
    assert sum(map(sum, a["boxes"]["center_heatmap"]["counts"])) == a["boxes"]["count"]["total"]


def auroc(scores, positive):
    """Mann-Whitney AUROC with tied ranks averaged."""
    scores, positive = np.asarray(scores), np.asarray(positive, dtype=bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j < len(scores) and sorted_scores[j] == sorted_scores[i]:
            j += 1
        ranks[order[i:j]] = (i + 1 + j) / 2
        i = j
    npos, nneg = positive.sum(), (~positive).sum()
    return (ranks[positive].sum() - npos * (npos + 1) / 2) / (npos * nneg)


def test_sensor_and_text_statistics_equal_numpy(planted):
    a, samples, m = planted["analysis"], planted["samples"], planted["manifest"]
    good = m["class_names"].index("good")
    defective = np.array([len(s["boxes"]) > 0 or (s["label"] >= 0 and s["label"] != good) for s in samples])
    assert a["sensors"]["defective_samples"] == defective.sum()
    windows = np.stack([s["sensors"] for s in samples]).astype(np.float64)  # (N, T, S)
    for ch, c in enumerate(a["sensors"]["channels"]):
        assert c["name"] == m["sensors"]["channels"][ch]
        v = windows[:, :, ch]
        finite = v[np.isfinite(v)]
        assert c["mean"] == pytest.approx(finite.mean(), rel=1e-6, abs=1e-9)
        assert c["std"] == pytest.approx(finite.std(), rel=1e-6, abs=1e-9)
        assert c["min"] == pytest.approx(finite.min()) and c["max"] == pytest.approx(finite.max())
        assert c["nan_share"] == pytest.approx(np.isnan(v).mean())
        means = np.nanmean(v, axis=1).astype(np.float32)
        stds = np.nanstd(v, axis=1).astype(np.float32)
        assert c["auroc_mean"] == pytest.approx(auroc(means, defective), abs=1e-3)
        assert c["auroc_std"] == pytest.approx(auroc(stds, defective), abs=1e-3)
        t = np.arange(len(samples)) / (len(samples) - 1)
        slope = np.polyfit(t, means.astype(np.float64), 1)[0]
        assert c["drift"] == pytest.approx(slope / finite.std(), rel=1e-3, abs=1e-6)
    words = defaultdict(int)
    for s in samples:
        for w in re.findall(rb"[A-Za-z0-9\x80-\xff]+", s["text"].encode()):
            words[w.lower()] += 1
    assert a["text"]["vocabulary"] == len(words)
    assert a["text"]["words"] == sum(words.values())
    top = a["text"]["top_words"][0]
    assert words[top[0].encode()] == top[1] == max(words.values())


def test_reports_are_written(planted):
    out = planted["out"]
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) >= 8
    for p in plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{p.name})" in md
    assert html.count("data:image/png;base64,") == len(plots)
    assert "leakage" in html and "leakage" in md


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed to check the HTML report: `make deps` installs Debian's chromium")


def test_html_report_loads_in_headless_chromium(planted, tmp_path):
    html = (planted["out"] / "report.html").read_text()
    probe = """<script>
window.addEventListener('error', e => document.body.setAttribute('data-error', String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100).length;
  document.body.setAttribute('data-images', imgs.length + '/' + ok);
});
</script>"""
    page = tmp_path / "report.html"
    page.write_text(html.replace("<body>", "<body>" + probe, 1))
    p = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    m = re.search(r'data-images="(\d+)/(\d+)"', p.stdout)
    assert m, "the page did not finish loading:\n" + p.stdout[:2000]
    total, ok = int(m.group(1)), int(m.group(2))
    assert total >= 8 and ok == total, f"{ok} of {total} plots decoded"
    body = re.search(r"<body[^>]*>", p.stdout).group(0)
    assert "data-error" not in body, body


def corrupt_one_chunk(ds, shard_file, row):
    with h5py.File(ds / shard_file, "r") as f:
        info = f["images"].id.get_chunk_info_by_coord((row, 0, 0, 0))
    with open(ds / shard_file, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(b"\xde\xad\xbe\xef" * 8)
    reseal_shard(ds, shard_file)  # else the whole shard is refused as changed (test_checksums.py)


def test_corrupt_chunk_is_reported_not_crashed_on(planted, tmp_path):
    ds = tmp_path / "ds"
    shutil.copytree(planted["ds"], ds)
    shard = planted["manifest"]["shards"][1]
    first = planted["manifest"]["shards"][0]["samples"]
    corrupt_one_chunk(ds, shard["file"], 3)
    out = tmp_path / "out"
    p = lathe("analyze", ds, "-o", out, check=False)
    assert p.returncode == 0, p.stderr
    a = json.loads((out / "analysis.json").read_text())
    assert a["findings"]["corrupt"]["count"] == 1
    assert a["findings"]["corrupt"]["samples"] == [first + 3]
    assert a["analyzed"] == a["samples"] - 1
    assert (out / "report.html").exists()
    p = lathe("analyze", ds, "-o", tmp_path / "gate", "--fail-on", "corrupt", check=False)
    assert p.returncode == 3 and "corrupt" in p.stderr


def test_fail_on_gates_with_exit_3(planted, tmp_path):
    p = lathe("analyze", planted["ds"], "-o", tmp_path / "a", "--fail-on", "leakage,corrupt", check=False)
    assert p.returncode == 3
    assert re.search(r"^  leakage +\d", p.stderr, re.M) and not re.search(r"^  corrupt", p.stderr, re.M)
    a = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert a["failed"] == ["leakage"]
    p = lathe("analyze", planted["ds"], "-o", tmp_path / "b", "--fail-on", "corrupt,empty-class", check=False)
    assert p.returncode == 0, p.stderr
    p = lathe("analyze", planted["ds"], "-o", tmp_path / "c", "--fail-on", "leakag", check=False)
    assert p.returncode == 2 and "leakag" in p.stderr
    p = lathe("analyze", planted["ds"], "-o", tmp_path / "d", "--radius", "16", check=False)
    assert p.returncode == 2
    p = lathe("analyze", tmp_path / "missing", "-o", tmp_path / "e", check=False)
    assert p.returncode == 1 and "lathe: error:" in p.stderr


def test_compare_reports_shifts(planted, tmp_path):
    p = lathe("analyze", planted["ds"], "-o", tmp_path / "same", "--compare", planted["ds"])
    a = json.loads((tmp_path / "same" / "analysis.json").read_text())
    cmp = a["compare"]
    assert cmp["class_mix"]["total_variation"] == 0
    assert cmp["brightness"]["shift_std"] == 0
    for kind in ("class-mix-shift", "box-size-shift", "brightness-shift", "sensor-shift"):
        assert a["findings"][kind]["count"] == 0
    # a reference whose images were much darker, whose boxes were 3x larger and whose first
    # channel ran 5 std lower: all three shifts, and nothing on the class mix
    ref = json.loads((planted["out"] / "analysis.json").read_text())
    ref["images"]["brightness"]["mean"] -= 3 * ref["images"]["brightness"]["std"]
    ref["boxes"]["stats"]["area"]["mean"] *= 3
    ch = ref["sensors"]["channels"][0]
    ch["mean"] -= 5 * ch["std"]
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    p = lathe("analyze", planted["ds"], "-o", tmp_path / "diff", "--compare", tmp_path / "ref.json",
              "--fail-on", "brightness-shift", check=False)
    assert p.returncode == 3
    a = json.loads((tmp_path / "diff" / "analysis.json").read_text())
    assert a["findings"]["brightness-shift"]["count"] == 1
    assert a["findings"]["box-size-shift"]["count"] == 1
    assert a["findings"]["sensor-shift"]["items"] == [ch["name"]]
    assert a["findings"]["class-mix-shift"]["count"] == 0
    assert a["compare"]["sensors"][0]["shift_std"] == pytest.approx(5, rel=1e-6)
    assert "Compared with the reference" in (tmp_path / "diff" / "report.md").read_text()


def test_compare_with_a_constant_or_broken_reference(planted, tmp_path):
    """A reference whose brightness or channel was constant (std 0) makes any move a shift (it was
    never one: a constant sensor could not drift); a reference class without a name, a repeated
    class name or a negative std is an error naming the file (a nameless class crashed analyze)."""
    ref = json.loads((planted["out"] / "analysis.json").read_text())
    ref["images"]["brightness"]["std"] = 0
    ref["images"]["brightness"]["mean"] += 1
    ch = ref["sensors"]["channels"][0]
    ch["std"], ch["mean"] = 0, ch["mean"] + 0.5
    (tmp_path / "const.json").write_text(json.dumps(ref))
    p = lathe("analyze", planted["ds"], "-o", tmp_path / "c", "--compare", tmp_path / "const.json",
              "--fail-on", "brightness-shift,sensor-shift", check=False)
    assert p.returncode == 3, p.stderr
    a = json.loads((tmp_path / "c" / "analysis.json").read_text())
    assert a["findings"]["brightness-shift"]["count"] == 1 and a["findings"]["sensor-shift"]["items"] == [ch["name"]]
    assert a["compare"]["brightness"]["shift_std"] is None  # infinite: JSON has no infinity
    good = json.loads((planted["out"] / "analysis.json").read_text())
    breakages = {"nameless class": lambda r: r["classes"][0].pop("name"),
                 "class name not a string": lambda r: r["classes"][0].update(name=7),
                 "class twice": lambda r: r["classes"].append(dict(r["classes"][0])),
                 "negative std": lambda r: r["images"]["brightness"].update(std=-5)}
    for what, breakage in breakages.items():
        ref = json.loads(json.dumps(good))
        breakage(ref)
        (tmp_path / "bad.json").write_text(json.dumps(ref))
        p = lathe("analyze", planted["ds"], "-o", tmp_path / "b", "--compare", tmp_path / "bad.json", check=False)
        assert p.returncode == 1 and "bad.json" in p.stderr and p.stderr.count("\n") <= 3, (what, p.stderr)


def findings_fixture(root, store):
    """A COCO folder where each quality finding has exactly one known culprit; returns its dataset
    (ingested with `store`) and {source name: index} read back with h5py."""
    rng = np.random.default_rng(5)
    src = root / "src"
    (src / "images").mkdir(parents=True)
    (src / "sensors").mkdir()
    w, h = 200, 150
    images, anns = [], []

    def add(name, arr, boxes=(), label=1):
        Image.fromarray(arr).save(src / "images" / name, quality=95)
        iid = len(images) + 1
        images.append({"id": iid, "file_name": name, "width": w, "height": h, "label": label})
        for cat, box in boxes:
            anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": cat, "bbox": list(box),
                         "area": box[2] * box[3], "iscrowd": 0})

    def write_sensors():  # temperature rises with the file name's rank, the order ingest stores them in
        names = sorted(im["file_name"] for im in images)
        for rank, name in enumerate(names):
            t = np.arange(16)
            vib = np.sin(t * (0.3 + 0.01 * rank)) * (1 + rank % 3)
            temp = 20 + 2.0 * rank + 0.1 * np.cos(t)
            rows = [f"{v:.5f},{'nan' if name.startswith('nan') and k % 2 else f'{tt:.3f}'}"
                    for k, (v, tt) in enumerate(zip(vib, temp))]
            (src / "sensors" / (Path(name).stem + ".csv")).write_text("vib,temp\n" + "\n".join(rows) + "\n")

    def scene():  # distinct textured scenes: random smooth fields, never near-duplicates of each other
        base = rng.normal(size=(h // 10 + 1, w // 10 + 1, 3))
        big = np.kron(base, np.ones((10, 10, 1)))[:h, :w]
        return np.clip(128 + 40 * big + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)

    for i in range(12):
        add(f"ok{i:02d}.jpg", scene(), [(1, (40 + i, 30, 50, 40))])
    add("dark.jpg", (scene() * 0.05).astype(np.uint8), [(1, (50, 50, 40, 30))])
    add("bright.jpg", np.clip(scene().astype(int) + 200, 0, 255).astype(np.uint8), [(1, (50, 50, 40, 30))])
    add("flat.jpg", np.full((h, w, 3), 120, np.uint8) + (np.indices((h, w))[1][..., None] // 50).astype(np.uint8),
        [(1, (50, 50, 40, 30))])
    add("tiny.jpg", scene(), [(1, (60, 60, 3, 30))])
    add("border.jpg", scene(), [(1, (0, 40, 30, 30))])
    add("double.jpg", scene(), [(1, (50, 50, 60, 40)), (1, (51, 50, 60, 40))])
    add("nan.jpg", scene(), [(1, (50, 50, 40, 30))])
    write_sensors()
    cats = [{"id": 0, "name": "good"}, {"id": 1, "name": "scratch"}, {"id": 2, "name": "never_seen"}]
    (src / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    ds = root / "ds"
    lathe("ingest", src, "-o", ds, "--store", store, "--size", 160, "--split", "1,0,0")
    manifest, samples = read_dataset(ds)
    return ds, {Path(source_of(s)).name: i for i, s in enumerate(samples)}


@pytest.mark.parametrize("store", ["pixels", "encoded"])
def test_each_finding_names_its_culprit(tmp_path, store):
    ds, index = findings_fixture(tmp_path, store)
    out = tmp_path / "out"
    lathe("analyze", ds, "-o", out, "--drift", "1.0", "--sensor-nan", "0.01")
    f = json.loads((out / "analysis.json").read_text())["findings"]
    assert f["underexposed"]["samples"] == [index["dark.jpg"]]
    assert f["overexposed"]["samples"] == [index["bright.jpg"]]
    assert index["flat.jpg"] in f["blurred"]["samples"]
    assert f["tiny-box"]["samples"] == [index["tiny.jpg"]]
    assert f["border-box"]["samples"] == [index["border.jpg"]]
    assert f["double-label"]["samples"] == [index["double.jpg"]]
    assert f["empty-class"]["classes"] == ["good", "never_seen"]
    assert f["sensor-nan"]["channels"] == ["temp"] and f["sensor-nan"]["samples"] == [index["nan.jpg"]]
    assert f["sensor-drift"]["channels"] == ["temp"]
    for kind in ("corrupt", "duplicate", "near-duplicate", "leakage", "degenerate-box", "sensor-constant"):
        assert f[kind]["count"] == 0, kind


def test_tiny_and_border_findings_at_their_thresholds(tmp_path):
    """Issue 24, item 1: the tiny-box finding is a shorter side under --tiny-box (4: a side of exactly
    4 stored pixels is not tiny, 3.9 is), the border finding an edge within --border of the content
    (1: an edge at exactly 1 px, or 159 of 160, is on the border; 1.1 or 158.9 is not). Square
    160 px images ingested at --size 160, so stored pixels are the source's."""
    rng = np.random.default_rng(21)
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    cases = {"tiny_at": (60, 60, 4, 30), "tiny_under": (60, 60, 3.9, 30), "left_at": (1, 60, 30, 30),
             "left_past": (1.1, 60, 30, 30), "right_at": (129, 60, 30, 30), "right_past": (128.9, 60, 30, 30)}
    images, anns = [], []
    for k, (name, box) in enumerate(cases.items()):
        Image.fromarray(rng.integers(60, 200, (160, 160, 3), dtype=np.uint8)).save(src / "images" / f"{name}.png")
        images.append({"id": k + 1, "file_name": f"{name}.png", "width": 160, "height": 160})
        anns.append({"id": k + 1, "image_id": k + 1, "category_id": 1, "bbox": list(box), "area": box[2] * box[3],
                     "iscrowd": 0})
    (src / "annotations.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                      "categories": [{"id": 1, "name": "scratch"}]}))
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 160, "--split", "1,0,0")
    _, samples = read_dataset(tmp_path / "ds")
    index = {Path(s["meta"]["source"].decode()).stem: i for i, s in enumerate(samples)}
    lathe("analyze", tmp_path / "ds", "-o", tmp_path / "out", "--tiny-box", 4, "--border", 1)
    f = json.loads((tmp_path / "out" / "analysis.json").read_text())["findings"]
    assert f["tiny-box"]["samples"] == [index["tiny_under"]]
    assert sorted(f["border-box"]["samples"]) == sorted([index["left_at"], index["right_at"]])


def test_markdown_report_escapes_class_names_and_has_no_nan(tmp_path):
    """report.md renders in VS Code, GitLab or mkdocs, which pass HTML through: a class named
    <img onerror=...> must arrive as text there, as it does in report.html. A class without boxes (every
    class of a class-folder dataset) shows "-" for its mean box size, not "nan x nan"."""
    rng = np.random.default_rng(4)
    hostile = "<img src=x onerror=alert(1)> & <b>co"  # a folder name: no slash
    for cls in (hostile, "ok"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "src" / cls / f"{i}.png")
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", 16, "--format", "folders")
    lathe("analyze", tmp_path / "ds", "-o", tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt; &amp; &lt;b&gt;co" in md
    assert "<img src=x" not in md and "<b>" not in md
    html = (tmp_path / "r" / "report.html").read_text()
    assert "nan x nan" not in md + html and "| - |" in md
