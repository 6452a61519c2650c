# lathe notebook template: an anomaly head's evaluation (lathe eval RUN, task: anomaly).

# %% [markdown]
# # Evaluation `{{name}}`
#
# {{summary}}

# %%
import json
from pathlib import Path

import pandas as pd
from IPython.display import Image, display

EVAL = Path({{path}})
report = json.loads((EVAL / "report.json").read_text())

pd.set_option("display.max_colwidth", None)  # whole texts, as lathe stores them
pd.set_option("display.max_rows", None)  # every row and column, as lathe stores them
pd.set_option("display.max_columns", None)

# %% [markdown]
# ## Summary
#
# Image AUROC: good (label 0) against every defect class; pixel AUROC and PRO (per-region overlap up
# to a false positive rate of 0.3) against the dataset's masks, on maps of `map_size`.

# %% metrics
summary = {k: report[k] for k in ("images", "good", "defective", "image_auroc", "pixel_auroc", "pro")}
summary.update({f"best_f1_{k}": v for k, v in report["best_f1"].items()})
summary.update({f"run_threshold_{k}": v for k, v in (report["run_threshold"] or {}).items()})
pd.DataFrame({"value": pd.Series(summary, dtype=object)})

# %% [markdown]
# ## Per defect class
#
# Image AUROC of the good images against each class's.

# %% classes
pd.DataFrame(report["classes"]).set_index("name")

# %% [markdown]
# ## Maps
#
# The image, and the image under its anomaly map; the defect mask outlined in white.

# %% maps
for m in report["maps"]:
    print(f"{m['why']}: sample {m['sample']}")
    display(Image(filename=str(EVAL / m["file"])))
