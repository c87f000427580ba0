"""whylogs: ``why.log(pandas_df)`` on the feature-statistics data set (runs in the whylogs venv)."""

import argparse
import importlib.metadata
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import whylogs as why
from _common import emit, feature_names, median_time

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, required=True)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

X = np.load(args.data / "stats.npy")
df = pd.DataFrame(X, columns=feature_names(X.shape[1]))
why.log(df.head(1000))  # warm-up: imports, schema resolution
t = median_time(lambda: why.log(df), repeats=args.repeats)
emit({"tool": "whylogs", "version": importlib.metadata.version("whylogs"),
      "numpy": np.__version__, "pandas": pd.__version__,
      "values": int(X.size), "seconds": t, "mvalues_per_s": X.size / t["median"] / 1e6})
