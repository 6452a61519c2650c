# lathe notebook template: a dataset analysis (lathe analyze). The charts stored with the cells are
# the ones lathe analyze wrote into plots/; the code redraws each from analysis.json.

# %% [markdown]
# # Dataset analysis `{{name}}`
#
# {{summary}}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

ANALYSIS = Path({{path}})
DATASET = Path({{dataset}})
analysis = json.loads((ANALYSIS / "analysis.json").read_text())

pd.set_option("display.max_colwidth", None)  # whole texts, as lathe stores them
pd.set_option("display.max_rows", None)  # every row and column, as lathe stores them
pd.set_option("display.max_columns", None)
if "text.parse_math" in plt.rcParams:  # a name with two $ signs is text, not mathtext
    plt.rcParams["text.parse_math"] = False


def histogram(h, title, xlabel, ylabel):
    fig, ax = plt.subplots()
    ax.stairs(h["counts"], h["edges"], fill=True)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    plt.show()


def heatmap(counts, labels, title, xlabel, ylabel):
    fig, ax = plt.subplots(figsize=(7, 6))
    image = ax.imshow(counts, cmap="Blues")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if labels:
        ax.set_xticks(range(len(labels)), labels, rotation=90)
        ax.set_yticks(range(len(labels)), labels)
    fig.colorbar(image)
    plt.show()

# %% [markdown]
# ## Splits

# %% splits
pd.DataFrame({split: {"samples": s["samples"], "objects_per_image_mean": s["objects_per_image"]["mean"],
                      "unlabeled": s["unlabeled"]} for split, s in analysis["splits"].items()}).T

# %% [markdown]
# ## Classes
#
# Images holding the class (a box of it, or its image label) and boxes, per split.

# %% classes
pd.DataFrame({c["name"]: {**{f"images_{k}": v for k, v in c["images"].items()},
                          **{f"boxes_{k}": v for k, v in c["boxes"].items()}} for c in analysis["classes"]}).T

# %% plot_class_images
names = [c["name"] for c in analysis["classes"]]
ax = pd.DataFrame({split: [c["images"][split] for c in analysis["classes"]] for split in ("train", "val", "test")},
                  index=names).plot.bar(title="Images per class and split")
ax.set(xlabel="class", ylabel="images")
plt.show()

# %% [markdown]
# ## Findings
#
# Every kind lathe analyze looks for, with how many it found (sample ids are in analysis.json).

# %% findings
pd.DataFrame({kind: {"count": f["count"], "description": f["description"]}
              for kind, f in analysis["findings"].items()}).T

# %% [markdown] boxes_title
# ## Boxes

# %% plot_objects_per_image
histogram(analysis["boxes"]["per_image"]["histogram"], "Objects per image", "objects", "images")

# %% plot_box_area
histogram(analysis["boxes"]["area_histogram"], "Box area", "log10(area in source pixels)", "boxes")

# %% plot_box_aspect
histogram(analysis["boxes"]["aspect_histogram"], "Box aspect ratio", "log2(width / height)", "boxes")

# %% plot_box_centers
heatmap(analysis["boxes"]["center_heatmap"]["counts"], None, "Box centres in the image", "x", "y")

# %% plot_cooccurrence
heatmap(analysis["cooccurrence"]["counts"], analysis["cooccurrence"]["classes"], "Class co-occurrence (images)",
        "class", "class")

# %% [markdown] images_title
# ## Images

# %% plot_brightness
histogram(analysis["images"]["brightness"]["histogram"], "Image brightness", "mean luma", "images")

# %% plot_contrast
histogram(analysis["images"]["contrast"]["histogram"], "Image contrast", "std of luma", "images")

# %% plot_sharpness
histogram(analysis["images"]["sharpness"]["histogram"], "Image sharpness", "variance of the Laplacian", "images")

# %% [markdown] sensors_title
# ## Sensors

# %% plot_sensors
channels = pd.DataFrame(analysis["sensors"]["channels"]).set_index("name")
ax = channels[["separation", "nan_share"]].plot.bar(title="Sensor channels: separation of good and defective, NaN share")
ax.set(xlabel="channel", ylabel="0..1")
plt.show()

# %% [markdown] samples_title
# ## Samples
#
# The first images of the dataset, read from its HDF5 shards with h5py (hdf5plugin provides the
# zstd filter lathe writes with).

# %% samples
import h5py
import hdf5plugin  # noqa: F401  (registers the zstd filter)
import io
from PIL import Image

manifest = json.loads((DATASET / "manifest.json").read_text())
images = []  # the first 8 samples, in the dataset's order (shards as the manifest lists them)
for entry in manifest["shards"]:
    with h5py.File(DATASET / entry["file"], "r") as shard:
        pixels = "images" in shard
        store = shard["images"] if pixels else shard["encoded"]
        for i in range(min(8 - len(images), len(store))):
            images.append(store[i] if pixels else Image.open(io.BytesIO(store[i].tobytes())))
    if len(images) == 8:
        break
fig, axes = plt.subplots(1, len(images), figsize=(2 * len(images), 2), squeeze=False)
for ax, image in zip(axes[0], images):
    ax.imshow(np.asarray(image).squeeze(), cmap="gray")
    ax.axis("off")
plt.show()
