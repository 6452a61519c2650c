# lathe notebook template: a classifier's or an image-text head's evaluation (lathe eval RUN).

# %% [markdown]
# # Evaluation `{{name}}`
#
# {{summary}}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

EVAL = Path({{path}})
report = json.loads((EVAL / "report.json").read_text())

pd.set_option("display.max_colwidth", None)  # whole texts, as lathe stores them
pd.set_option("display.max_rows", None)  # every row and column, as lathe stores them
pd.set_option("display.max_columns", None)
if "text.parse_math" in plt.rcParams:  # a name with two $ signs is text, not mathtext
    plt.rcParams["text.parse_math"] = False

# %% [markdown]
# ## Summary

# %% metrics
summary = {"samples": report["samples"], "accuracy": report["accuracy"]}
summary.update({f"macro_{k}": v for k, v in report["macro"].items()})
for key in ("loss", "chance"):
    if key in report:
        summary[key] = report[key]
pd.DataFrame({"value": summary})

# %% [markdown]
# ## Per class

# %% classes
classes = pd.DataFrame(report["classes"]).set_index("name")
classes

# %% confusion
labels = [c["name"] for c in report["classes"]]
fig, ax = plt.subplots(figsize=(7, 6))
image = ax.imshow(report["confusion"], cmap="Blues")
ax.set(title="Confusion matrix (rows: true class, columns: predicted)", xlabel="predicted", ylabel="true")
ax.set_xticks(range(len(labels)), labels, rotation=90)
ax.set_yticks(range(len(labels)), labels)
fig.colorbar(image)
plt.show()

# %% [markdown] retrieval_title
# ## Retrieval
#
# Recall at 1, 5 and 10 over the split's descriptions, both ways.

# %% retrieval
pd.DataFrame({way: v for way, v in report["retrieval"].items() if isinstance(v, dict)}).T

# %% [markdown] holdout_title
# ## Classes held out of training
#
# Zero-shot accuracy on the classes named only in text at evaluation time.

# %% holdout
pd.DataFrame({"value": pd.Series(report["holdout"], dtype=object)})
