"""NannyML: ``UnivariateDriftCalculator`` fit on 100k, calculate on 10k (runs in the nannyml venv)."""

import argparse
import importlib.metadata
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nannyml as nml
import numpy as np
import pandas as pd
from _common import emit, feature_names, median_time

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, required=True)
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()

ref = np.load(args.data / "reference.npy")
cur = np.load(args.data / "current.npy")
names = feature_names(ref.shape[1])
ref_df = pd.DataFrame(ref, columns=names)
cur_df = pd.DataFrame(cur, columns=names)
METHODS = ["kolmogorov_smirnov", "jensen_shannon"]


def make():
    return nml.UnivariateDriftCalculator(column_names=names, continuous_methods=METHODS,
                                         chunk_size=len(cur_df))


state = {}
make().fit(ref_df.head(5000)).calculate(cur_df.head(5000))  # warm-up
build = median_time(lambda: state.__setitem__("calc", make().fit(ref_df)), repeats=args.repeats)
calc = state["calc"]
evaluate = median_time(lambda: state.__setitem__("res", calc.calculate(cur_df)),
                       repeats=args.repeats)
df = state["res"].filter(period="analysis").to_df()
flagged = []
for name in names:
    alerts = [bool(df[(name, m, "alert")].any()) for m in METHODS]
    if any(alerts):
        flagged.append(name)
emit({"tool": "NannyML univariate drift", "version": importlib.metadata.version("nannyml"),
      "numpy": np.__version__, "pandas": pd.__version__, "build": build, "evaluate": evaluate,
      "flagged": flagged,
      "rule": "alert on KS or Jensen-Shannon (NannyML default thresholds), chunk = the 10k window"})
