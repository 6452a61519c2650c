# lathe notebook template: a training run (lathe train). Cell format: notebooks-export/template.h.

# %% [markdown]
# # Training run `{{name}}`
#
# {{summary}}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

RUN = Path({{path}})

pd.set_option("display.max_colwidth", None)  # whole texts, as lathe stores them
pd.set_option("display.max_rows", None)  # every row and column, as lathe stores them
pd.set_option("display.max_columns", None)
if "text.parse_math" in plt.rcParams:  # a name with two $ signs is text, not mathtext
    plt.rcParams["text.parse_math"] = False

# %% [markdown] metrics_title
# ## Headline metrics
#
# `metrics.json`, written when training ended.

# %% [markdown] unfinished
# ## Headline metrics
#
# No `metrics.json` yet: training has not ended (it was stopped, or is still running). The log
# below holds the epochs finished so far.

# %% metrics
metrics = json.loads((RUN / "metrics.json").read_text())
pd.DataFrame({"value": pd.Series(metrics, dtype=object)})

# %% [markdown]
# ## The spec
#
# `config.yaml`: the spec as training resolved it (bases merged, overrides applied).

# %% spec
print((RUN / "config.yaml").read_text(), end="")

# %% [markdown] no_log
# ## Training log
#
# `log.jsonl` holds no epoch yet: the run stopped before its first epoch ended.

# %% [markdown] log_title
# ## Training log
#
# One row per epoch from `log.jsonl`; the curves below are drawn from it.

# %% log
log = pd.read_json(RUN / "log.jsonl", lines=True)
log.set_index("epoch")

# %% curves
def is_loss(column):
    return column == "loss" or column.startswith("loss_") or column == "val_loss"


def is_validation(column):
    return column.startswith("val_") and "loss" not in column and "detections" not in column


for title, wanted in (("Training loss", is_loss), ("Validation", is_validation)):
    columns = [c for c in log.columns if wanted(c) and pd.api.types.is_numeric_dtype(log[c])]
    if columns:
        ax = log.plot(x="epoch", y=columns, title=title, marker="o")
        ax.set_ylabel("value")
        plt.show()
