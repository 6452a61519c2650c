# lathe notebook template: several training runs side by side.

# %% [markdown]
# # Comparing {{count}} runs
#
# {{summary}}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

pd.set_option("display.max_colwidth", None)  # whole texts, as lathe stores them
pd.set_option("display.max_rows", None)  # every row and column, as lathe stores them
pd.set_option("display.max_columns", None)
if "text.parse_math" in plt.rcParams:  # a name with two $ signs is text, not mathtext
    plt.rcParams["text.parse_math"] = False

RUNS = {name: Path(path) for name, path in json.loads({{runs}}).items()}

# %% [markdown]
# ## Headline metrics
#
# Each run's `metrics.json`.

# %% metrics
def metrics_of(run):  # none yet while a run trains or after it was stopped
    path = run / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


pd.DataFrame({name: metrics_of(run) for name, run in RUNS.items()}).T

# %% [markdown]
# ## Curves
#
# Training loss and the first validation metric of each run, per epoch.

# %% curves
logs = {}
for name, run in RUNS.items():
    text = (run / "log.jsonl").read_text()
    logs[name] = pd.read_json(run / "log.jsonl", lines=True) if text.strip() else pd.DataFrame({"epoch": []})
for column, title in (("loss", "Training loss"), ({{metric}}, "Validation " + {{metric}})):
    fig, ax = plt.subplots()
    for name, log in logs.items():
        if column in log:
            ax.plot(log["epoch"], log[column], marker="o", label=name)
    ax.set(title=title, xlabel="epoch", ylabel=column)
    ax.legend()
    plt.show()

# %% [markdown]
# ## Spec differences
#
# Every setting of `config.yaml` whose value differs between the runs (lists by index; a dash
# where a run lacks the setting).

# %% spec_diff
def flatten(value, prefix=""):
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: json.dumps(value, ensure_ascii=False)}  # UTF-8 as lathe writes it, not ASCII escapes
    out = {}
    for key, item in items:
        out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


specs = {name: flatten(yaml.safe_load((run / "config.yaml").read_text())) for name, run in RUNS.items()}
keys = sorted(set().union(*specs.values()))
differ = [k for k in keys if len({spec.get(k, "-") for spec in specs.values()}) > 1]
pd.DataFrame({name: [spec.get(k, "-") for k in differ] for name, spec in specs.items()}, index=differ)
