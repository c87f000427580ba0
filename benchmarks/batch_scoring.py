"""Batch scoring monitored on Spark (local[2]) and Dask (2 workers) against one process.

    PYTHONPATH=src .venv/bin/python benchmarks/batch_scoring.py --rows 1000000

A model trained on scikit-learn's breast-cancer data scores ``--rows`` rows resampled from the
rest of it (one feature shifted); each way records into its own ModelMonitor. The table prints
the wall time, rows/s, the ratio to one process, and how the drift report and exported feature
metrics compare with the single process's: rows and every count exactly, the largest
difference of a drift score or moment (target: <= 1e-9). Multivariate drift reads a sample of
at most 256 rows per batch, so it equals one process only over the same batches (the tests
check that); here the engines' batches differ (Spark repartitions and reads Arrow batches),
so its column shows the rows each way read and the relative difference of the mean
reconstruction error: the same statistic over another sample.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_batch_scoring import feature_points, make_monitor, predictor, scoring_data  # noqa: E402

from otel_ml import Reference  # noqa: E402


def batch_of(rows: int) -> tuple[pd.DataFrame, Any, Reference]:
    train, batch, model = scoring_data()
    rng = np.random.default_rng(7)
    big = batch.iloc[rng.integers(0, len(batch), rows)].reset_index(drop=True)
    predict = predictor(model)
    return big, predict, Reference.from_data(train, predictions=predict(train))


def largest_difference(got: Any, expected: Any) -> tuple[bool, float]:
    """(counts equal, largest float difference) over drift report and feature metrics."""
    worst = 0.0
    exact = True

    def walk(a: Any, b: Any) -> None:
        nonlocal worst, exact
        if isinstance(a, dict):
            exact = exact and a.keys() == b.keys()
            for k in a.keys() & b.keys():
                if k != "evaluated_at":
                    walk(a[k], b[k])
        elif isinstance(a, (list, tuple)):
            for x, y in zip(a, b):
                walk(x, y)
        elif isinstance(a, float) and not isinstance(a, bool):
            if not (np.isnan(a) and np.isnan(b)):
                worst = max(worst, abs(a - b) / max(1.0, abs(b)))
        else:
            exact = exact and a == b

    def univariate(monitor: Any) -> dict:
        report = monitor.drift_report().to_dict()
        report.pop("multivariate", None)
        for segment in report.get("segments", {}).values():
            segment.pop("multivariate", None)
        return report

    walk(univariate(got[0]), univariate(expected[0]))
    pa, pb = feature_points(got[1]), feature_points(expected[1])
    exact = exact and pa.keys() == pb.keys()
    walk({str(k): v for k, v in pa.items()}, {str(k): v for k, v in pb.items()})
    return exact, worst


def multivariate(got: Any, expected: Any) -> str:
    """Rows read by each way and the relative difference of the mean reconstruction error."""
    a = got[0].drift_report().multivariate.get("reconstruction_error", {})
    b = expected[0].drift_report().multivariate.get("reconstruction_error", {})
    if not a or not b:
        return "missing"
    return (f"{a['rows']:,}/{b['rows']:,} rows, "
            f"{abs(a['value'] - b['value']) / b['value']:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=8)
    args = parser.parse_args()
    frame, predict, reference = batch_of(args.rows)
    results = []

    one = make_monitor(reference)
    start = time.perf_counter()
    for part in np.array_split(np.arange(len(frame)), args.partitions):
        chunk = frame.iloc[part]
        one[0].observe(chunk, predict(chunk.drop(columns=["site"])))
    t_one = time.perf_counter() - start
    results.append(("one process, monitor.observe per partition", t_one, (True, 0.0), "-"))

    from pyspark.sql import SparkSession

    from otel_ml.integrations import spark as otel_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    df = session.createDataFrame(frame).repartition(args.partitions).cache()
    df.count()
    spark_monitor = make_monitor(reference)
    start = time.perf_counter()
    otel_spark.monitor(df, predict, monitor=spark_monitor[0])
    results.append(("Spark local[2] (data cached)", time.perf_counter() - start,
                    largest_difference(spark_monitor, one), multivariate(spark_monitor, one)))
    session.stop()

    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from otel_ml.integrations import dask as otel_dask

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        ddf = client.persist(dd.from_pandas(frame, npartitions=args.partitions))
        dask_monitor = make_monitor(reference)
        start = time.perf_counter()
        otel_dask.monitor(ddf, predict, monitor=dask_monitor[0])
        results.append(("Dask LocalCluster 2 workers (persisted)", time.perf_counter() - start,
                        largest_difference(dask_monitor, one), multivariate(dask_monitor, one)))

    print(f"\nbatch scoring {args.rows:,} rows x 8 features, {args.partitions} partitions; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'way':45} {'seconds':>8} {'k rows/s':>9} {'vs 1 process':>12}  "
          f"{'counts':>7} {'max diff':>9}  multivariate (rows read, error diff)")
    for name, t, (exact, worst), mv in results:
        print(f"{name:45} {t:8.2f} {args.rows / t / 1e3:9.0f} {t_one / t:11.2f}x  "
              f"{'equal' if exact else 'DIFFER':>7} {worst:9.1e}  {mv}")


if __name__ == "__main__":
    main()
