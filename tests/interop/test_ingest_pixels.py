"""What lathe stores equals what Pillow decodes: every PNG colour type and depth (and PNG's eXIf
orientation), JPEG with each EXIF orientation, gray, progressive and CMYK (turned into RGB as Pillow's convert("RGB") does; lathe
rejected CMYK until 2026-12-07) (at the original size, letterbox scale 1); tiles and the encoded store."""
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from fixtures import image_array, lathe, read_dataset


def pillow_rgb(data):
    img = Image.open(io.BytesIO(data))
    img = ImageOps.exif_transpose(img)
    if img.mode == "I;16":  # Pillow clips 16-bit gray when converting; lathe keeps the high byte
        return np.repeat((np.array(img).astype(np.uint16) >> 8).astype(np.uint8)[..., None], 3, axis=2)
    return np.array(img.convert("RGB"))


def exif_orientation(o):
    exif = Image.Exif()
    exif[0x0112] = o
    return exif.tobytes()


def variants(rng):
    w, h = 72, 40
    rgb = image_array(rng, w, h)
    out = {}
    for mode in ("L", "LA", "RGB", "RGBA", "P", "1"):
        img = Image.fromarray(rgb).convert(mode) if mode != "LA" else Image.fromarray(rgb).convert("LA")
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out[f"png_{mode}.png"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(buf, "PNG")  # 16-bit gray
    out["png_16gray.png"] = buf.getvalue()
    for mode, o in (("RGB", 3), ("RGB", 6), ("RGBA", 8), ("L", 5), ("P", 7)):  # an eXIf chunk (lathe ignored it until stop 51)
        buf = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buf, "PNG", exif=exif_orientation(o))
        out[f"png_{mode}_o{o}.png"] = buf.getvalue()
    for o in range(1, 9):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=92, exif=exif_orientation(o))
        out[f"jpeg_o{o}.jpg"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("L").save(buf, "JPEG", quality=92)
    out["jpeg_gray.jpg"] = buf.getvalue()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, progressive=True)
    out["jpeg_progressive.jpg"] = buf.getvalue()
    for o in (1, 6):  # CMYK, as print and Photoshop workflows save (Adobe's inverted samples)
        buf = io.BytesIO()
        Image.fromarray(rgb).convert("CMYK").save(buf, "JPEG", quality=92, exif=exif_orientation(o))
        out[f"jpeg_cmyk_o{o}.jpg"] = buf.getvalue()
    return out


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    root = tmp_path_factory.mktemp("pixels")
    files = variants(np.random.default_rng(4))
    (root / "src" / "images").mkdir(parents=True)
    images = []
    for i, (name, data) in enumerate(sorted(files.items())):
        (root / "src" / "images" / name).write_bytes(data)
        images.append({"id": i + 1, "file_name": name})
    (root / "src" / "annotations.json").write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
    lathe("ingest", root / "src", "-o", root / "ds", "--size", "72", "--split", "1,0,0")
    _, samples = read_dataset(root / "ds")
    return files, {s["meta"]["source"].decode()[len("images/"):]: s for s in samples}


def test_every_variant_was_ingested(decoded):
    files, samples = decoded
    assert sorted(samples) == sorted(files)


@pytest.mark.parametrize("name", sorted(variants(np.random.default_rng(4))))
def test_pixels_equal_pillow(decoded, name):
    files, samples = decoded
    want = pillow_rgb(files[name])
    s = samples[name]
    h, w = want.shape[:2]
    assert (int(s["meta"]["orig_width"]), int(s["meta"]["orig_height"])) == (w, h)
    py, px = int(s["meta"]["pad_y"]), int(s["meta"]["pad_x"])
    got = s["image"][py:py + h, px:px + w]
    assert float(s["meta"]["scale_x"]) == 1.0
    diff = np.abs(got.astype(int) - want.astype(int))
    assert diff.max() <= 1, f"{name}: max difference {diff.max()}"  # same libjpeg IDCT; PNG exact
    if name.endswith(".png"):
        assert diff.max() == 0


def tile_boxes(boxes, x0, y0, T, min_vis):
    """The boxes a tile holds: clipped to it, kept when at least 1 px shows each way and at least
    min_vis of the whole box's area shows."""
    out = []
    for x, y, w, h in boxes:
        x1, y1, x2, y2 = max(x - x0, 0), max(y - y0, 0), min(x + w - x0, T), min(y + h - y0, T)
        if x2 - x1 >= 1 and y2 - y1 >= 1 and (x2 - x1) * (y2 - y1) >= min_vis * w * h:
            out.append([x1, y1, x2, y2])
    return out


# x, y, w, h: the first tile column (x 0..128) cuts each of them at x = 128
TILED_BOXES = [[100, 50, 60, 40],    # spans tiles; 28 x 18 of 2400 px² in tile (0, 72): a sliver
               [125, 10, 10, 10],    # 30 of 100 px² in tile (0, 0)
               [118, 10, 40, 40],    # 10 x 40: exactly 1/4 of its area in tile (0, 0)
               [119, 10, 40, 40],    # 9 x 40: under 1/4
               [127, 60, 4, 4],      # 1 x 4: exactly 1 px wide and exactly 1/4 of its area
               [127.5, 100, 4, 4]]   # 0.5 px wide


@pytest.mark.parametrize("min_vis", [None, 0.0])
def test_tiles_cover_the_image_and_clip_boxes(tmp_path, min_vis):
    rng = np.random.default_rng(1)
    arr = image_array(rng, 300, 200)
    (tmp_path / "src" / "images").mkdir(parents=True)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    (tmp_path / "src" / "images" / "big.png").write_bytes(buf.getvalue())
    coco = {"images": [{"id": 1, "file_name": "big.png", "width": 300, "height": 200}],
            "categories": [{"id": 1, "name": "crack"}],
            "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b}
                            for i, b in enumerate(TILED_BOXES)]}
    (tmp_path / "src" / "annotations.json").write_text(json.dumps(coco))
    args = [] if min_vis is None else ["--min-visibility", min_vis]
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--tile", "128", "--overlap", "16", "--split", "1,0,0",
          *args)
    manifest, tiles = read_dataset(tmp_path / "ds")
    assert manifest["image_size"] == [128, 128] and len(tiles) == 3 * 2  # x: 0,112,172  y: 0,72
    got = {}
    for t in tiles:
        x0, y0 = int(t["meta"]["tile_x"]), int(t["meta"]["tile_y"])
        assert np.array_equal(t["image"], arr[y0:y0 + 128, x0:x0 + 128])
        got[x0, y0] = t["boxes"].tolist()
        assert got[x0, y0] == tile_boxes(TILED_BOXES, x0, y0, 128, 0.25 if min_vis is None else min_vis)
    if min_vis is None:  # the default, 0.25: at the threshold kept, under it dropped
        assert got[0, 0] == [[100, 50, 128, 90], [125, 10, 128, 20], [118, 10, 128, 50], [127, 60, 128, 64]]
        assert got[0, 72] == []
    else:  # every box at least 1 px wide and high is kept
        assert got[0, 0] == [[100, 50, 128, 90], [125, 10, 128, 20], [118, 10, 128, 50], [119, 10, 128, 50],
                             [127, 60, 128, 64]]
        assert got[0, 72] == [[100, 0, 128, 18]]


def test_encoded_store_keeps_source_bytes(tmp_path):
    from fixtures import coco_source
    coco_source(tmp_path / "src", n=6, sensors=False)
    lathe("ingest", tmp_path / "src", "-o", tmp_path / "ds", "--store", "encoded", "--split", "1,0,0")
    manifest, samples = read_dataset(tmp_path / "ds")
    assert manifest["store"] == "encoded"
    for s in samples:
        src = (tmp_path / "src" / s["meta"]["source"].decode()).read_bytes()
        assert s["encoded"] == src
        assert all(b[2] <= 160 and b[3] <= 120 for b in s["boxes"])  # source pixels


PAD = 114  # the letterbox's grey (docs/FORMAT.md)
RESIZE_SOURCES = {  # name: (width, height, format, EXIF orientation)
    "large.jpg": (480, 360, "JPEG", 1),      # shrunk 1/4..1/8: libjpeg's reduced DCT scale, then the resampler
    "wide.jpg": (900, 150, "JPEG", 1),
    "rotated.jpg": (400, 240, "JPEG", 6),    # EXIF 6: stored 400 x 240, shown 240 x 400
    "odd.png": (257, 131, "PNG", 1),         # PNG: full decode, the resampler alone
    "small.png": (40, 30, "PNG", 1),         # enlarged
    "gray16.png": (300, 200, "PNG16", 1),    # 16-bit grey: lathe keeps the high byte
}


def smooth_noisy(rng, w, h):
    """Broad colour waves (no hard edges, which every resampler renders its own way) under fine noise
    (which only an averaging resampler renders as the reference does)."""
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    waves = np.stack([np.sin(2 * np.pi * (xx * (1 + k) + yy * (2 - k) / 2) + k) for k in range(3)], -1)
    return np.clip(128 + 90 * waves + rng.uniform(-30, 30, size=(h, w, 3)), 0, 255).astype(np.uint8)


def resize_source(rng, w, h, fmt, orientation):
    rgb = smooth_noisy(rng, w, h)
    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(rgb).save(buf, "JPEG", quality=95, exif=exif_orientation(orientation))
    elif fmt == "PNG16":
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(buf, "PNG")
    else:
        Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def pillow_letterbox(data, size):
    """The reference pipeline: Pillow's full-size decode, EXIF orientation, its antialiased bilinear
    resize (Image.BILINEAR, support widened by the scale when shrinking), centred on PAD grey. The
    scale and rounding are lathe's documented ones: s = min(S / w, S / h), side = round(w * s)."""
    rgb = pillow_rgb(data)
    h, w = rgb.shape[:2]
    s = min(size / w, size / h)
    nw, nh = min(size, max(1, int(w * s + 0.5))), min(size, max(1, int(h * s + 0.5)))
    img = Image.fromarray(rgb)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    canvas = np.full((size, size, 3), PAD, np.uint8)
    x0, y0 = (size - nw) // 2, (size - nh) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = np.asarray(img)
    inside = np.zeros((size, size), bool)
    inside[y0:y0 + nh, x0:x0 + nw] = True
    return canvas, inside


@pytest.fixture(scope="module")
def resize_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("resize")
    rng = np.random.default_rng(11)
    files = {name: resize_source(rng, *spec) for name, spec in RESIZE_SOURCES.items()}
    (root / "images").mkdir()
    for name, data in files.items():
        (root / "images" / name).write_bytes(data)
    return root, files


@pytest.mark.parametrize("size", [48, 100, 160])
def test_letterboxed_pixels_equal_pillow_resize(resize_sources, tmp_path, size):
    """The main ingest path (--size S: a reduced-scale JPEG decode where it still covers S, then
    lathe's antialiased resampler and the letterbox) against Pillow's pipeline. Tolerance: the padding
    exact; inside, PNG sources (the resampler alone) within 1 grey level everywhere, JPEG sources
    (libjpeg's scaled IDCT averages before the resampler, Pillow decodes in full) under 3 levels on
    average and 16 at most. A resampler without antialiasing misses both on these noisy images."""
    root, files = resize_sources
    lathe("ingest", root, "-o", tmp_path / "ds", "--size", size, "--split", "1,0,0")
    _, samples = read_dataset(tmp_path / "ds")
    got = {s["meta"]["source"].decode().split("/")[-1]: s["image"] for s in samples}
    assert sorted(got) == sorted(files)
    for name, data in files.items():
        want, inside = pillow_letterbox(data, size)
        diff = np.abs(got[name].astype(int) - want.astype(int))
        assert diff[~inside].max(initial=0) == 0, f"{name} at {size}: the letterbox padding differs"
        mad, worst = diff[inside].mean(), diff[inside].max()
        ok = worst <= 1 if name.endswith(".png") else mad < 3.0 and worst <= 16
        assert ok, f"{name} at {size}: mean difference {mad:.2f}, max {worst}"
