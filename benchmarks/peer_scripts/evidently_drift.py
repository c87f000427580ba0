"""Evidently: ``Report([DataDriftPreset()])`` on 10k vs 100k (runs in the evidently venv).

Evidently has no separate reference step: the reference frame is passed to every run, and its
bins are computed on reference + current together, so the whole run is the evaluation.
"""

import argparse
import importlib.metadata
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
from _common import emit, feature_names, median_time
from evidently import Report
from evidently.presets import DataDriftPreset

parser = argparse.ArgumentParser()
parser.add_argument("--data", type=Path, required=True)
parser.add_argument("--repeats", type=int, default=3)
args = parser.parse_args()

ref = np.load(args.data / "reference.npy")
cur = np.load(args.data / "current.npy")
names = feature_names(ref.shape[1])
ref_df = pd.DataFrame(ref, columns=names)
cur_df = pd.DataFrame(cur, columns=names)

Report([DataDriftPreset()]).run(current_data=cur_df.head(500), reference_data=ref_df.head(500))
state = {}
evaluate = median_time(lambda: state.__setitem__(
    "snap", Report([DataDriftPreset()]).run(current_data=cur_df, reference_data=ref_df)),
    repeats=args.repeats)
flagged, methods = [], set()
for metric in state["snap"].dict()["metrics"]:
    config = metric.get("config", {})
    if config.get("type", "").endswith("ValueDrift"):
        methods.add(config["method"])
        value = metric["value"]
        # Distances drift at score >= threshold; p-value tests at p < threshold.
        is_p = "p_value" in config["method"] or "test" in config["method"].lower()
        if (value < config["threshold"]) if is_p else (value >= config["threshold"]):
            flagged.append(config["column"])
emit({"tool": "Evidently DataDriftPreset", "version": importlib.metadata.version("evidently"),
      "numpy": np.__version__, "pandas": pd.__version__, "evaluate": evaluate,
      "flagged": sorted(flagged),
      "rule": f"Evidently defaults: {', '.join(sorted(methods))}, threshold 0.1"})
