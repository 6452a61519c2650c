"""Writes scikit-learn's bundled handwritten digits (1797 real 8x8 scans, UCI) as one folder per
class of PNG files, the layout `lathe ingest` reads as the `folders` format:

    python experiments/classify/make_digits.py OUT        # OUT/0/0000.png ... OUT/9/1796.png

Pixel values 0..16 are scaled to 0..255 (grayscale PNG)."""
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    digits = load_digits()
    for i, (img, label) in enumerate(zip(digits.images, digits.target)):
        d = out / str(label)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img * 255 / 16).astype(np.uint8), "L").save(d / f"{i:04d}.png")
    print(f"{len(digits.images)} digits in {out}")


if __name__ == "__main__":
    main()
