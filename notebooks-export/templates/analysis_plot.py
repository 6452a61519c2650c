# lathe notebook template: a chart of a dataset analysis that analysis.py has no code for (one
# lathe analyze added later): shown as the PNG it wrote.

# %% plot
from IPython.display import Image as PNG

PNG(filename=ANALYSIS / "plots" / {{file}})
