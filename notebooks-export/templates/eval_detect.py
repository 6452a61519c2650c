# lathe notebook template: a detector's evaluation (lathe eval RUN, lathe eval --detections).

# %% [markdown]
# # Evaluation `{{name}}`
#
# {{summary}}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

EVAL = Path({{path}})
report = json.loads((EVAL / "report.json").read_text())

pd.set_option("display.max_colwidth", None)  # whole texts, as lathe stores them
pd.set_option("display.max_rows", None)  # every row and column, as lathe stores them
pd.set_option("display.max_columns", None)
if "text.parse_math" in plt.rcParams:  # a name with two $ signs is text, not mathtext
    plt.rcParams["text.parse_math"] = False

# %% [markdown]
# ## COCO metrics
#
# pycocotools' twelve numbers (-1 where a size range has no ground truth).

# %% metrics
pd.DataFrame({"value": report["metrics"]})

# %% [markdown]
# ## Per class
#
# AP over IoU 0.50:0.95 and at 0.5, and the score threshold with the best F1 (IoU 0.5).

# %% classes
rows = {}
for c in report["classes"]:
    best = c.get("best_f1") or {}
    rows[c["name"]] = {"AP": c["AP"], "AP50": c["AP50"], "best_f1_threshold": best.get("threshold"),
                       "f1": best.get("f1"), "precision": best.get("precision"), "recall": best.get("recall")}
classes = pd.DataFrame.from_dict(rows, orient="index")
classes

# %% class_ap
ax = classes[["AP", "AP50"]].clip(lower=0).plot.bar(title="AP per class")
ax.set_ylabel("AP")
plt.show()

# %% [markdown] verdicts_title
# ## Inspection verdicts
#
# Per source image: the class of its best detection scoring at least the threshold, else good.

# %% verdicts
level = report["image_level"]
print(f"{level['images']} images judged, accuracy {level['accuracy']:.4f}")
pd.DataFrame(level["matrix"], index=level["labels"], columns=level["labels"])

# %% [markdown] open_vocabulary_title
# ## Open vocabulary
#
# AP on the classes trained (base) and on those named only in text (novel).

# %% open_vocabulary
vocabulary = report["open_vocabulary"]
print("named only in text: " + ", ".join(vocabulary.get("novel_classes", [])))
pd.DataFrame({group: v for group, v in vocabulary.items() if isinstance(v, dict)}).T

# %% [markdown] pr_title
# ## Precision-recall curves
#
# At IoU 0.5, all areas, 100 detections per image.

# %% pr
recall = np.linspace(0, 1, 101)
curves = {c["name"]: c["pr_curve_iou50"] for c in report["classes"] if max(c.get("pr_curve_iou50") or [-1]) >= 0}
names = list(curves)
for start in range(0, len(names), 8):
    fig, ax = plt.subplots()
    for name in names[start:start + 8]:
        ax.plot(recall, [p if p >= 0 else np.nan for p in curves[name]], label=name)
    ax.set(title="Precision-recall at IoU 0.5", xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    ax.legend()
    plt.show()

# %% [markdown] confusion_title
# ## Confusion matrix
#
# Rows: true class, columns: predicted; the last row and column are background (false positives,
# missed ground truth).

# %% confusion
confusion = report["confusion"]
fig, ax = plt.subplots(figsize=(7, 6))
image = ax.imshow(confusion["matrix"], cmap="Blues")
ax.set(title="Confusion matrix", xlabel="predicted", ylabel="true")
ax.set_xticks(range(len(confusion["labels"])), confusion["labels"], rotation=90)
ax.set_yticks(range(len(confusion["labels"])), confusion["labels"])
fig.colorbar(image)
plt.show()

# %% [markdown] training_title
# ## Training
#
# The run's per-epoch log, as the report holds it.

# %% training
training = pd.DataFrame(report["training"])
for column, title in (("loss", "Training loss"), ("val_map", "Validation mAP")):
    if column in training:
        ax = training.plot(x="epoch", y=column, title=title, legend=False)
        ax.set_ylabel(column)
        plt.show()
