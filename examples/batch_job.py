"""A nightly batch-scoring job whose labels arrive days later, in bulk.

    pip install 'otel-ml[demo]'
    python examples/batch_job.py [--days 3]

Day by day: score the day's batch with an instrumented function (telemetry: one span per
batch, feature statistics and drift against the training profile), store the predictions
with their ids, and record the labels of an earlier day when they come in, with
``monitor.record_outcomes(y_true, y_pred, segments=...)``. The wine data bundled with
scikit-learn (three cultivars, 13 chemical measurements) plays the part of the production
data; from day 2 one supplier's alcohol readings are 2.5 points high.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sklearn.datasets import load_wine
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

import otel_ml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="days to simulate (default: 3)")
    parser.add_argument("--batch-rows", type=int, default=400, help="rows scored per day")
    args = parser.parse_args()

    reader = InMemoryMetricReader()
    exporting = bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_ml.configure("batch-example", exporter=None if exporting else "none",
                      metric_readers=[reader])

    wine = load_wine(as_frame=True)
    X_train, X_pool, y_train, y_pool = train_test_split(
        wine.data, wine.target, test_size=0.4, random_state=0, stratify=wine.target)
    model = HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(X_train, y_train)
    reference = otel_ml.Reference.from_data(X_train, predictions=model.predict(X_train))

    monitor = otel_ml.ModelMonitor("wine-cultivar", "3.2.0", reference=reference,
                                   task="classification", segment_by="supplier")

    predict_stage = otel_ml.trace_stage("predict")

    @monitor
    def score_batch(batch: pd.DataFrame) -> np.ndarray:
        with predict_stage:
            return model.predict(batch.drop(columns=["supplier"]))

    rng = np.random.default_rng(0)
    stored: dict[int, tuple[pd.DataFrame, np.ndarray, np.ndarray]] = {}
    for day in range(1, args.days + 1):
        idx = rng.integers(0, len(X_pool), size=args.batch_rows)
        batch = X_pool.iloc[idx].reset_index(drop=True)
        batch["supplier"] = rng.choice(["north", "south"], size=len(batch))
        if day >= 2:  # the southern supplier's alcohol meter reads high from day 2
            south = batch["supplier"] == "south"
            batch.loc[south, "alcohol"] += 2.5
        predictions = score_batch(batch)
        stored[day] = (batch, predictions, y_pool.iloc[idx].to_numpy())
        report = monitor.drift_report()  # over the drift window (default: the last hour)
        by_supplier = "; ".join(f"{name}: {', '.join(sub.drifted_features)}"
                                for name, sub in sorted(report.segments.items())
                                if sub.drifted_features)
        print(f"day {day}: scored {len(batch)} rows; drifted: "
              f"{', '.join(report.drifted_features) or 'none'}"
              + (f" ({by_supplier})" if by_supplier else ""))

        # Labels for the day before arrive today, in one file: record them in bulk.
        if day - 1 in stored:
            old_batch, old_predictions, truth = stored.pop(day - 1)
            monitor.record_outcomes(truth, old_predictions, segments=old_batch["supplier"])
            report = monitor.performance_report()
            print(f"day {day}: labels of day {day - 1} recorded; "
                  f"accuracy so far {report.metrics['accuracy']:.3f}")
    otel_ml.shutdown()


if __name__ == "__main__":
    main()
