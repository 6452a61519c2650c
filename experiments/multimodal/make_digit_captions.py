"""Writes scikit-learn's bundled handwritten digits (1797 real 8x8 scans, UCI) as a COCO folder
whose images carry an image-level label (the digit, as a class named in words: zero ... nine) and a
description drawn from a small grammar: several phrasings, the digit as a word or a numeral, and
attributes measured from the scan itself (how much ink, which way it leans, where it sits). The
image-text specs of experiments/multimodal train on these; a class held out of training by name is
then recognized, or not, from its prompt alone.

    python experiments/multimodal/make_digit_captions.py OUT [--seed S]

OUT/images/NNNN.png and OUT/annotations.json. Deterministic for a seed."""
import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = [
    "a handwritten {d}",
    "the digit {d}, written by hand{a}",
    "a scanned {d}{a}",
    "{a2} handwritten {d}",
    "an ink drawing of the number {d}{a}",
    "a {d} on a form field{a}",
]


def attributes(img):
    """Words for what the scan shows: ink amount, slant, position (measured, not invented)."""
    ink = img.sum() / (16 * 64)
    ys, xs = np.nonzero(img > 4)
    out = []
    if ink > 0.33:  # the top and bottom quarter of the 1797 scans
        out.append("bold")
    elif ink < 0.278:
        out.append("thin")
    if len(xs) > 4:
        slope = np.polyfit(ys, xs, 1)[0]
        if slope < -0.1:  # x falls as y (downwards) grows: the top leans right
            out.append("slanted to the right")
        elif slope > 0.18:
            out.append("slanted to the left")
    return out


def describe(rng, label, img):
    digit = WORDS[label] if rng.random() < 0.8 else str(label)
    attrs = attributes(img)
    t = TEMPLATES[rng.integers(len(TEMPLATES))]
    a = (", " + " and ".join(attrs)) if attrs and rng.random() < 0.7 else ""
    a2 = ("a " + attrs[0]) if attrs and attrs[0] in ("bold", "thin") else "a"
    return t.format(d=digit, a=a, a2=a2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    digits = load_digits()
    images = []
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        name = f"images/{i:04d}.png"
        Image.fromarray(np.round(img * 255 / 16).astype(np.uint8), "L").save(out / name)
        images.append({"id": i + 1, "file_name": name, "width": 8, "height": 8, "label": int(label) + 1,
                       "description": describe(rng, int(label), img)})
    cats = [{"id": k + 1, "name": w} for k, w in enumerate(WORDS)]
    (out / "annotations.json").write_text(json.dumps({"images": images, "annotations": [], "categories": cats}))
    print(f"{len(images)} captioned digits in {out}")


if __name__ == "__main__":
    main()
