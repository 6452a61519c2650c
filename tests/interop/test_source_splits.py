"""Ingest keeps the splits a source already has (issue 23): an Ultralytics YOLO dataset's val folder
stays val, class folders under train/ val/ test/ keep their split, `--split source,X` carves a val
share out of a source with only train and test (the same one on every rerun), images outside the
split folders are rejected with their reason, `--split A,B,C` still splits by lathe's hash, and
`--part`/`--merge` keep source splits. `lathe info` says where the splits came from."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures import image_array, lathe, read_dataset, rejects

SPLITS = ("train", "val", "test")


def save(path, rng, w=48, h=36):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_array(rng, w, h)).save(path)


def ultralytics(root, counts={"train": 12, "val": 5}):
    """The layout Ultralytics documents: images/<split>/, labels/<split>/, data.yaml naming them."""
    rng = np.random.default_rng(3)
    for split, n in counts.items():
        for i in range(n):
            save(root / "images" / split / f"{split}_{i:02d}.jpg", rng)
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / f"{split}_{i:02d}.txt").write_text(f"{i % 2} 0.5 0.5 0.25 0.25\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames:\n  0: scratch\n  1: dent\n")
    return root


def split_of_sources(ds):
    _, samples = read_dataset(ds)
    return {Path(s["meta"]["source"].decode()).name: s["split"] for s in samples}


def test_a_yolo_datasets_own_val_stays_val(tmp_path):
    src = ultralytics(tmp_path / "yolo")
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    got = split_of_sources(tmp_path / "ds")
    assert got == {p.name: p.parent.name for p in (src / "images").rglob("*.jpg")}
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["split_origin"] == "source"
    info = lathe("info", tmp_path / "ds").stdout
    assert "splits    the source's train/val/test folders" in info
    # --split A,B,C: lathe's stable hash over the whole source instead
    lathe("ingest", src, "-o", tmp_path / "hashed", "--size", 32, "--split", "0.5,0.25,0.25")
    hashed = split_of_sources(tmp_path / "hashed")
    assert set(hashed.values()) == set(SPLITS) and hashed != got
    assert json.loads((tmp_path / "hashed" / "manifest.json").read_text())["split_origin"] == "hash"
    assert "lathe's stable hash" in lathe("info", tmp_path / "hashed").stdout


def test_class_folders_under_split_folders(tmp_path):
    rng = np.random.default_rng(5)
    want = {}
    for split, n in (("train", 6), ("val", 3), ("test", 2)):
        for cls in ("good", "bad"):
            for i in range(n):
                name = f"{split}-{cls}-{i}.png"
                save(tmp_path / "src" / split / cls / name, rng)
                want[name] = split
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", 32, "--format", "folders")
    assert split_of_sources(tmp_path / "ds") == want
    _, samples = read_dataset(tmp_path / "ds")
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert sorted(manifest["class_names"]) == ["bad", "good"]  # the split folder is not a class


def test_carving_val_out_of_train_is_stable(tmp_path):
    src = ultralytics(tmp_path / "yolo", counts={"train": 40, "test": 6})
    lathe("ingest", src, "-o", tmp_path / "a", "--size", 32, "--split", "source,0.25")
    lathe("ingest", src, "-o", tmp_path / "b", "--size", 32, "--split", "source,0.25")
    a, b = split_of_sources(tmp_path / "a"), split_of_sources(tmp_path / "b")
    assert a == b  # reruns agree
    assert all(a[n] == "test" for n in a if n.startswith("test_"))  # the source's test split untouched
    carved = [n for n in a if n.startswith("train_") and a[n] == "val"]
    assert 4 <= len(carved) <= 18  # about a quarter of 40
    assert all(a[n] in ("train", "val") for n in a if n.startswith("train_"))


def test_images_outside_the_split_folders_are_rejected(tmp_path):
    src = ultralytics(tmp_path / "yolo")
    rng = np.random.default_rng(9)
    save(src / "images" / "extra" / "stray.jpg", rng)
    (src / "labels" / "extra").mkdir()
    (src / "labels" / "extra" / "stray.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    p = lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    assert "stray.jpg" not in split_of_sources(tmp_path / "ds")
    reasons = {r["reason"] for r in rejects(tmp_path / "ds") if r["path"].endswith("stray.jpg")}
    assert reasons == {"outside_source_splits"}, p.stderr
    # a source without split folders: --split source is refused with a sentence, the default hashes
    flat = tmp_path / "flat"
    for i in range(4):
        save(flat / "ok" / f"{i}.png", rng)
    bad = lathe("ingest", flat, "-o", tmp_path / "flat-ds", "--size", 32, "--split", "source", check=False)
    assert bad.returncode == 1 and "no image" in bad.stderr and "train, val or test folder" in bad.stderr
    lathe("ingest", flat, "-o", tmp_path / "flat-ds2", "--size", 32)
    assert json.loads((tmp_path / "flat-ds2" / "manifest.json").read_text())["split_origin"] == "hash"
    assert lathe("ingest", flat, "-o", tmp_path / "x", "--split", "source,1.5", check=False).returncode == 2


def test_parts_and_merge_keep_source_splits(tmp_path):
    src = ultralytics(tmp_path / "yolo")
    whole = tmp_path / "whole"
    lathe("ingest", src, "-o", whole, "--size", 32)
    parts = []
    for i in range(2):
        parts.append(tmp_path / f"part{i}")
        lathe("ingest", src, "-o", parts[-1], "--size", 32, "--part", f"{i}/2")
    lathe("ingest", "--merge", "-o", tmp_path / "merged", *parts)
    assert split_of_sources(tmp_path / "merged") == split_of_sources(whole)
    assert json.loads((tmp_path / "merged" / "manifest.json").read_text())["split_origin"] == "source"


@pytest.mark.parametrize("path, split", [("images/train/a.jpg", "train"), ("coco/val2017/x.jpg", "val"),
                                         ("bottle/test/broken_large/000.png", "test"), ("Training/x.png", "train"),
                                         ("data/test/images/valid/x.jpg", "val"), ("train.jpg", None),
                                         ("trains/x.jpg", None), ("images/x_train/a.jpg", None)])
def test_which_folders_name_a_split(tmp_path, path, split):
    """The rule, through the CLI: the deepest folder named train/training, val/valid/validation,
    test/testing (any case, digits may follow) decides; file names and other words do not."""
    rng = np.random.default_rng(1)
    save(tmp_path / "src" / "ok" / path, rng)
    save(tmp_path / "src" / "ok" / "val" / "anchor.png", rng)  # so the source has split folders
    p = lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--size", 32, "--format", "folders", check=False)
    got = split_of_sources(tmp_path / "ds").get(Path(path).name)
    assert got == split, p.stderr


def coco_split(root, split, names, first_id, rng):
    """An annotation file of one split (annotations/instances_<split>.json) and its images in
    <split>2017/; ids start at first_id (COCO's ids are per file: the test makes them overlap)."""
    images, anns = [], []
    for k, name in enumerate(names):
        save(root / f"{split}2017" / name, rng)
        images.append({"id": first_id + k, "file_name": name, "width": 48, "height": 36})
        anns.append({"id": first_id + k, "image_id": first_id + k, "category_id": 1, "bbox": [4, 4, 10, 10],
                     "area": 100, "iscrowd": 0})
    (root / "annotations").mkdir(exist_ok=True)
    (root / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "scratch"}]}))


def test_coco_annotation_files_per_split(tmp_path):
    rng = np.random.default_rng(2)
    src = tmp_path / "coco"
    coco_split(src, "train", [f"t{i}.jpg" for i in range(8)], 1, rng)
    coco_split(src, "val", [f"v{i}.jpg" for i in range(3)], 1, rng)  # the same ids as train's
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    got = split_of_sources(tmp_path / "ds")
    assert got == {**{f"t{i}.jpg": "train" for i in range(8)}, **{f"v{i}.jpg": "val" for i in range(3)}}
    _, samples = read_dataset(tmp_path / "ds")
    assert all(len(s["boxes"]) == 1 for s in samples)  # overlapping ids did not mix the files' boxes
    # the images all in one folder: the annotation file's name alone gives the split
    flat = tmp_path / "flat"
    coco_split(flat, "train", [f"t{i}.jpg" for i in range(4)], 1, rng)
    coco_split(flat, "val", [f"v{i}.jpg" for i in range(2)], 10, rng)
    for p in list((flat / "train2017").iterdir()) + list((flat / "val2017").iterdir()):
        (flat / "images").mkdir(exist_ok=True)
        p.rename(flat / "images" / p.name)
    lathe("ingest", flat, "-o", tmp_path / "flat-ds", "--size", 32)
    assert split_of_sources(tmp_path / "flat-ds") == {**{f"t{i}.jpg": "train" for i in range(4)},
                                                      **{f"v{i}.jpg": "val" for i in range(2)}}


def test_an_image_in_two_splits_is_rejected_not_moved(tmp_path):
    rng = np.random.default_rng(4)
    src = tmp_path / "coco"
    coco_split(src, "train", ["a.jpg", "b.jpg", "shared.jpg"], 1, rng)
    coco_split(src, "val", ["c.jpg", "shared.jpg"], 100, rng)
    (src / "val2017" / "shared.jpg").unlink()  # one image file, named by both splits' annotations
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    got = split_of_sources(tmp_path / "ds")
    assert "shared.jpg" not in got and got == {"a.jpg": "train", "b.jpg": "train", "c.jpg": "val"}
    assert {r["reason"] for r in rejects(tmp_path / "ds") if r["path"].endswith("shared.jpg")} == {"in_two_splits"}


def voc(root, ids, lists, rng):
    """VOCdevkit's layout: JPEGImages/, Annotations/ (one XML each), ImageSets/Main/<list>.txt."""
    for i in ids:
        save(root / "JPEGImages" / f"{i}.jpg", rng)
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "Annotations" / f"{i}.xml").write_text(
            f"<annotation><filename>{i}.jpg</filename><size><width>48</width><height>36</height><depth>3</depth></size>"
            "<object><name>dent</name><difficult>0</difficult><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>20</xmax>"
            "<ymax>20</ymax></bndbox></object></annotation>")
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for name, members in lists.items():
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{m}\n" for m in members))
    (root / "ImageSets" / "Main" / "dent_train.txt").write_text("".join(f"{m}  1\n" for m in ids))  # a class list


def test_voc_image_sets(tmp_path):
    rng = np.random.default_rng(6)
    ids = [f"{k:06d}" for k in range(10)]
    voc(tmp_path / "a", ids, {"train": ids[:6], "val": ids[6:8], "trainval": ids[:8], "test": ids[8:] + ["999999"]}, rng)
    lathe("ingest", tmp_path / "a", "-o", tmp_path / "ds-a", "--size", 32)
    missing = [r for r in rejects(tmp_path / "ds-a") if r["reason"] == "missing_file"]
    assert len(missing) == 1 and missing[0]["path"].endswith("ImageSets/Main/test.txt") and "999999" in missing[0]["detail"]
    want = {**{f"{i}.jpg": "train" for i in ids[:6]}, **{f"{i}.jpg": "val" for i in ids[6:8]},
            **{f"{i}.jpg": "test" for i in ids[8:]}}
    assert split_of_sources(tmp_path / "ds-a") == want
    # only trainval and test (VOC2007's test release): trainval is train, and --split source,X carves val
    voc(tmp_path / "b", ids, {"trainval": ids[:8], "test": ids[8:]}, rng)
    lathe("ingest", tmp_path / "b", "-o", tmp_path / "ds-b", "--size", 32)
    got = split_of_sources(tmp_path / "ds-b")
    assert got == {**{f"{i}.jpg": "train" for i in ids[:8]}, **{f"{i}.jpg": "test" for i in ids[8:]}}
    lathe("ingest", tmp_path / "b", "-o", tmp_path / "ds-c", "--size", 32, "--split", "source,0.5")
    carved = split_of_sources(tmp_path / "ds-c")
    assert {carved[f"{i}.jpg"] for i in ids[:8]} == {"train", "val"}
    # an image both lists put in different splits is rejected, not moved
    voc(tmp_path / "d", ids, {"train": ids[:6], "val": ids[5:8], "test": ids[8:]}, rng)
    lathe("ingest", tmp_path / "d", "-o", tmp_path / "ds-d", "--size", 32)
    assert f"{ids[5]}.jpg" not in split_of_sources(tmp_path / "ds-d")
    assert {r["reason"] for r in rejects(tmp_path / "ds-d") if r["path"].endswith(f"{ids[5]}.jpg")} == {"in_two_splits"}


def yolo_flat(src, n, seed):
    """A YOLO source with all its images in images/ and labels in labels/ (no split folders):
    returns the folder and the image names (without extension)."""
    rng = np.random.default_rng(seed)
    names = [f"im{i}" for i in range(n)]
    (src / "labels").mkdir(parents=True)
    for name in names:
        save(src / "images" / f"{name}.jpg", rng)
        (src / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.3 0.3\n")
    return src, names


def test_yolo_image_lists(tmp_path):
    """data.yaml naming list files (train: train.txt), as Ultralytics' autosplit writes them: the
    images all in one folder, each list's images in its split."""
    src, names = yolo_flat(tmp_path / "yolo", 9, seed=8)
    (src / "autosplit_train.txt").write_text("".join(f"./images/{n}.jpg\n" for n in names[:6]))
    (src / "autosplit_val.txt").write_text("".join(f"./images/{n}.jpg\r\n" for n in names[6:]))
    (src / "data.yaml").write_text("path: .\ntrain: autosplit_train.txt\nval: autosplit_val.txt\nnames: [dent]\n")
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    assert split_of_sources(tmp_path / "ds") == {**{f"{n}.jpg": "train" for n in names[:6]},
                                                 **{f"{n}.jpg": "val" for n in names[6:]}}


def test_kitti_image_sets_split_the_training_folder(tmp_path):
    """KITTI's object benchmark: every labelled frame under training/, split by ImageSets/train.txt
    and val.txt (the list's word beats the training/ folder's)."""
    rng = np.random.default_rng(12)
    src = tmp_path / "kitti"
    ids = [f"{k:06d}" for k in range(8)]
    for i in ids:
        save(src / "training" / "image_2" / f"{i}.png", rng)
        (src / "training" / "label_2").mkdir(parents=True, exist_ok=True)
        (src / "training" / "label_2" / f"{i}.txt").write_text(
            "Car 0.00 0 -1.5 5.0 5.0 20.0 20.0 1.5 1.6 3.9 1.0 1.7 8.0 -1.6\n")
    (src / "ImageSets").mkdir()
    (src / "ImageSets" / "train.txt").write_text("".join(f"{i}\n" for i in ids[:5]))
    (src / "ImageSets" / "val.txt").write_text("".join(f"{i}\n" for i in ids[5:]))
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    assert split_of_sources(tmp_path / "ds") == {**{f"{i}.png": "train" for i in ids[:5]},
                                                 **{f"{i}.png": "val" for i in ids[5:]}}


def test_yolo_data_yaml_names_its_split_folders(tmp_path):
    """data.yaml's train:/val: naming folders whatever they are called (relative, ./ and ../ dropped,
    a list of folders too); a folder named for two splits (train: images, val: images) says nothing."""
    rng = np.random.default_rng(13)
    src = tmp_path / "yolo"
    layout = {"set_a": 5, "set_b": 3, "extra": 2}
    for folder, n in layout.items():
        for i in range(n):
            save(src / "images" / folder / f"{folder}{i}.jpg", rng)
            (src / "labels" / folder).mkdir(parents=True, exist_ok=True)
            (src / "labels" / folder / f"{folder}{i}.txt").write_text("0 0.5 0.5 0.3 0.3\n")
    (src / "data.yaml").write_text("path: .\ntrain: [./images/set_a, images/extra/]\nval: ../images/set_b\nnames: [dent]\n")
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    want = {f"{f}{i}.jpg": "val" if f == "set_b" else "train" for f, n in layout.items() for i in range(n)}
    assert split_of_sources(tmp_path / "ds") == want
    # train and val the same folder: no split from data.yaml, so lathe's hash (no split folders either)
    (src / "data.yaml").write_text("train: images\nval: images\nnames: [dent]\n")
    lathe("ingest", src, "-o", tmp_path / "ds2", "--size", 32)
    assert json.loads((tmp_path / "ds2" / "manifest.json").read_text())["split_origin"] == "hash"


def test_yolo_data_yaml_names_its_list_files(tmp_path):
    """data.yaml's train:/val: naming list files of any name (one image path a line), read whatever
    order the files come in; a .txt nobody names changes nothing."""
    src, names = yolo_flat(tmp_path / "yolo", 7, seed=14)
    (src / "lists").mkdir()
    (src / "lists" / "a_fit.txt").write_text("".join(f"./images/{n}.jpg\n" for n in names[:5]))
    (src / "lists" / "z_check.txt").write_text("".join(f"images/{n}.jpg\n" for n in names[5:]))
    (src / "README.txt").write_text("not a list\n")
    (src / "data.yaml").write_text("path: .\ntrain: lists/a_fit.txt\nval: ./lists/z_check.txt\nnames: [dent]\n")
    lathe("ingest", src, "-o", tmp_path / "ds", "--size", 32)
    assert split_of_sources(tmp_path / "ds") == {**{f"{n}.jpg": "train" for n in names[:5]},
                                                 **{f"{n}.jpg": "val" for n in names[5:]}}
