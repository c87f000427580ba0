"""NannyML CBPE (car loan, binary) and DLE (car price, regression) per chunk; also writes
the data sets as CSV so otel_ml (in its own venv) reads the same rows (runs in the nannyml venv).

Prints one JSON object: per analysis chunk, NannyML's estimate and the realised value.
"""

import argparse
import importlib.metadata
import os
import sys

os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # no usage analytics over the network
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nannyml as nml
import numpy as np
import pandas as pd
from _common import emit

parser = argparse.ArgumentParser()
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--chunk-size", type=int, default=2500)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
CS = args.chunk_size

# ----------------------------------------------------------------------- CBPE, car loan
ref, ana, tgt = nml.load_synthetic_car_loan_dataset()
ana = ana.merge(tgt, on="id")
# The data's y_pred disagrees with y_pred_proba >= 0.5 on ~2% of rows; otel_ml derives the
# predicted class from the probabilities (threshold 0.5), so both tools estimate that one.
for frame in (ref, ana):
    frame["y_pred"] = (frame["y_pred_proba"] >= 0.5).astype(int)
ref.to_csv(args.out / "car_loan_reference.csv", index=False)
ana.to_csv(args.out / "car_loan_analysis.csv", index=False)
cbpe = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="repaid",
                problem_type="classification_binary", metrics=["roc_auc", "accuracy"],
                chunk_size=CS)
cbpe.fit(ref)
est = cbpe.estimate(ana.drop(columns=["repaid"])).filter(period="analysis").to_df()
cls = []
for i in range(len(est)):
    lo, hi = i * CS, min((i + 1) * CS, len(ana))
    chunk = ana.iloc[lo:hi]
    row = {"start": lo, "end": hi}
    for metric in ("accuracy", "roc_auc"):
        row[metric] = {
            "estimated": float(est[(metric, "value")].iloc[i]),
            "lower": float(est[(metric, "lower_confidence_boundary")].iloc[i]),
            "upper": float(est[(metric, "upper_confidence_boundary")].iloc[i]),
        }
    from sklearn.metrics import roc_auc_score
    row["accuracy"]["realised"] = float((chunk["y_pred"] == chunk["repaid"]).mean())
    row["roc_auc"]["realised"] = float(roc_auc_score(chunk["repaid"], chunk["y_pred_proba"]))
    cls.append(row)

# ----------------------------------------------------------------------- DLE, car price
ref, ana, tgt = nml.load_synthetic_car_price_dataset()
ana = ana.merge(tgt, on="id")
ref.to_csv(args.out / "car_price_reference.csv", index=False)
ana.to_csv(args.out / "car_price_analysis.csv", index=False)
features = ["car_age", "km_driven", "price_new", "accident_count", "door_count", "fuel",
            "transmission"]
dle = nml.DLE(feature_column_names=features, y_pred="y_pred", y_true="y_true",
              metrics=["mae"], chunk_size=CS)
dle.fit(ref)
est = dle.estimate(ana.drop(columns=["y_true"])).filter(period="analysis").to_df()
reg = []
for i in range(len(est)):
    lo, hi = i * CS, min((i + 1) * CS, len(ana))
    chunk = ana.iloc[lo:hi]
    reg.append({"start": lo, "end": hi, "mae": {
        "estimated": float(est[("mae", "value")].iloc[i]),
        "lower": float(est[("mae", "lower_confidence_boundary")].iloc[i]),
        "upper": float(est[("mae", "upper_confidence_boundary")].iloc[i]),
        "realised": float((chunk["y_true"] - chunk["y_pred"]).abs().mean())}})

emit({"tool": "NannyML CBPE / DLE", "version": importlib.metadata.version("nannyml"),
      "chunk_size": CS, "classification": cls, "regression": reg})
