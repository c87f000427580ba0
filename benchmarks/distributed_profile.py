"""Profiling Parquet with two workers (Spark local[2], Dask with 2 workers, ``otel-ml profile
--workers 2``) against one process (``otel-ml profile --workers 1``) on the same files.

    PYTHONPATH=src .venv/bin/python benchmarks/distributed_profile.py --rows 20000000
    PYTHONPATH=src .venv/bin/python benchmarks/distributed_profile.py --rows 2000000 --quick

Writes ``--rows`` x 20 float features as 8 Parquet files (cached under ``--data``), times each
way once (``--repeats`` times with --repeats), checks every profile equals the single-process
one (counts, min/max, moments; the edges come from each way's merged uniform sample: 1,000,000
values per feature for the CLI, as for one file, 100,000 for Spark and Dask, so they agree
within sampling error and the table says when they differ),
and prints rows/s and the ratio to one process. Target (issue 20): >= 1.6x with 2 workers.
For Spark and Dask the table adds a floor measured in the same session: two passes that only
bring every row into the Python workers (Spark) or read every partition (Dask), computing
nothing; a profile cannot be faster than its floor.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FEATURES = 20
FILES = 8


def write_data(folder: Path, rows: int) -> Path:
    """``rows`` x 20 features in 8 Parquet files (reused when already there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = folder / f"rows-{rows}"
    if (target / "_done").exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20)
    per = rows // FILES
    for i in range(FILES):
        n = per if i < FILES - 1 else rows - per * (FILES - 1)
        cols = {}
        for j in range(FEATURES):
            kind = j % 4
            if kind == 0:
                cols[f"f{j}"] = rng.normal(j, 1 + j, n)
            elif kind == 1:
                cols[f"f{j}"] = rng.lognormal(0, 1, n)
            elif kind == 2:
                cols[f"f{j}"] = rng.integers(0, 50, n).astype(np.float64)
            else:
                cols[f"f{j}"] = rng.uniform(-1, 1, n)
        pq.write_table(pa.table(cols), target / f"part-{i:02d}.parquet", row_group_size=500_000)
    (target / "_done").touch()
    return target


def cli(folder: Path, workers: int, out: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (the command and its worker processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "otel_ml.cli", "profile", str(folder), "-o", str(out),
                    "--workers", str(workers), "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _rows_in(batches):  # noqa: ANN001, ANN202 - a mapInPandas function
    import pandas as pd

    yield pd.DataFrame({"n": [sum(len(b) for b in batches)]})


def spark(folder: Path) -> tuple[float, object, float]:
    """The profile's seconds and reference, and the floor: the seconds of two passes that only
    move every row into the Python workers (``mapInPandas`` counting rows), which any
    Python-side profile pays."""
    from pyspark.sql import SparkSession

    from otel_ml.integrations import spark as otel_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
               .config("spark.driver.memory", "3g")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    try:
        df = session.read.parquet(str(folder))
        df.count()  # session and JVM warm: timed is the profile, not Spark's start
        start = time.perf_counter()
        # The row count (from the Parquet metadata) bounds the partitions' samples.
        reference = otel_spark.profile(df, exact_shares=True, expected_rows=df.count())
        took = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(2):
            df.mapInPandas(_rows_in, schema="n long").collect()
        return took, reference, time.perf_counter() - start
    finally:
        session.stop()


def _warm() -> None:
    importlib.import_module("otel_ml.integrations.partitions")


def _materialise(part):  # noqa: ANN001, ANN202 - a map_partitions function
    return int(part.to_numpy().shape[0])


def dask(folder: Path) -> tuple[float, object, float]:
    """The profile's seconds and reference, and the floor: two passes that only read every
    partition into the workers as a pandas frame and turn it into one numpy array (``len``
    alone would be answered from the Parquet metadata)."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from otel_ml.integrations import dask as otel_dask

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        # Workers warm (as Spark's session): timed is the profile, not the imports.
        client.run(_warm)
        ddf = dd.read_parquet(str(folder / "*.parquet"))
        start = time.perf_counter()
        reference = otel_dask.profile(ddf, exact_shares=True, expected_rows=len(ddf))
        took = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(2):
            ddf.map_partitions(_materialise, meta=(None, "int64")).compute()
        return took, reference, time.perf_counter() - start


def compare(got: object, expected: object) -> str:
    """Exact parts equal? and the largest share difference."""
    worst, moved = 0.0, 0
    for name, p in expected.features.items():  # type: ignore[attr-defined]
        q = got.features[name]  # type: ignore[attr-defined]
        assert (q.count, q.missing, q.min, q.max) == (p.count, p.missing, p.min, p.max), name
        assert abs(q.mean - p.mean) <= 1e-9 * max(p.std, abs(p.mean)), name
        if len(q.edges) == len(p.edges) and np.array_equal(q.edges, p.edges):
            worst = max(worst, float(np.abs(q.shares - p.shares).max()))
        else:
            moved += 1
    if worst == 0 and not moved:
        return "identical"
    return (f"counts, min/max, moments equal; edges of {moved}/{len(expected.features)} "  # type: ignore[attr-defined]
            "features from another uniform sample")


def costs() -> None:
    """Per-partition costs behind docs/distributed.md's 1 B-row estimate (CPU time, so that
    the figures hold on a loaded machine): one in-memory pass, a state's bytes with and without
    ``expected_rows``, one merge, and the final build."""
    from otel_ml.integrations.partitions import ProfileSpec, profile_partition

    rng = np.random.default_rng(1)
    frame = {f"f{j}": rng.normal(j, 1 + j, 1_000_000) for j in range(FEATURES)}
    spec = ProfileSpec()  # the builder's default sample, 100,000 values per feature
    bounded = ProfileSpec(options={"expected_rows": 1_000_000_000})  # 1 B rows in all

    def cpu(fn):  # noqa: ANN001, ANN202
        start = time.process_time()
        out = fn()
        return time.process_time() - start, out

    quarter = {k: v[:250_000] for k, v in frame.items()}
    t_pass, _ = cpu(lambda: profile_partition(quarter, spec, 0))
    _, a = cpu(lambda: profile_partition(frame, spec, 0))
    _, b = cpu(lambda: profile_partition(frame, spec, 1))
    _, c = cpu(lambda: profile_partition(frame, bounded, 2))
    blob_a, blob_b = a.to_bytes(), b.to_bytes()
    t_merge, merged = cpu(lambda: type(a).from_bytes(blob_a).merge(type(b).from_bytes(blob_b)))
    t_build, _ = cpu(lambda: merged.references())
    print(f"\nper-partition costs (CPU time; {FEATURES} numeric features, sample 100,000)")
    print(f"{'quantity':58} {'measured':>14}")
    print(f"{'one pass in memory, 250,000 rows':58} {0.25 / t_pass:10.2f} M rows/CPU-s")
    print(f"{'state of a 1 M-row partition':58} {len(blob_a) / 1e6:11.1f} MB")
    print(f"{'  the same with expected_rows = 1 B (1,000 such partitions)':58} "
          f"{len(c.to_bytes()) / 1e6:11.2f} MB")
    print(f"{'one merge of two 1 M-row states (decode included)':58} {t_merge:12.3f} s")
    print(f"{'building the reference from the merged state':58} {t_build:12.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/otel-ml-bench-distributed"))
    parser.add_argument("--skip", default="", help="comma-separated: spark,dask,cli2")
    parser.add_argument("--costs", action="store_true",
                        help="only the per-partition costs behind docs/distributed.md")
    args = parser.parse_args()
    if args.costs:
        costs()
        return
    skip = set(filter(None, args.skip.split(",")))
    folder = write_data(args.data, args.rows)
    from otel_ml import Reference

    one_path = args.data / "one.json"
    t_one, cpu_one = cli(folder, 1, one_path)
    one = Reference.load(one_path)
    rows = [("otel-ml profile --workers 1 (baseline)", t_one, cpu_one, "baseline")]
    if "cli2" not in skip:
        two_path = args.data / "two.json"
        t, cpu = cli(folder, 2, two_path)
        rows.append(("otel-ml profile --workers 2", t, cpu,
                     compare(Reference.load(two_path), one)))
    if "spark" not in skip:
        t, ref, floor = spark(folder)
        rows.append(("Spark local[2], expected_rows=count()", t, None, compare(ref, one)))
        rows.append(("  floor: rows into Python, 2 passes", floor, None, "nothing computed"))
    if "dask" not in skip:
        t, ref, floor = dask(folder)
        rows.append(("Dask 2 workers, expected_rows=len(ddf)", t, None, compare(ref, one)))
        rows.append(("  floor: read partitions, 2 passes", floor, None, "nothing computed"))
    cores = os.cpu_count()
    print(f"\nprofiling {args.rows:,} rows x {FEATURES} features, {FILES} Parquet files, "
          f"two passes (exact shares); {cores} cores, load average {os.getloadavg()[0]:.1f}")
    print(f"{'way':40} {'seconds':>8} {'M rows/s':>9} {'vs 1 process':>12} "
          f"{'CPU s':>7} {'M rows/CPU-s':>12}  profile vs 1 process")
    for name, t, cpu, check in rows:
        per_cpu = f"{args.rows / cpu / 1e6:12.2f}" if cpu else f"{'-':>12}"
        cpu_text = f"{cpu:7.1f}" if cpu else f"{'-':>7}"
        print(f"{name:40} {t:8.1f} {args.rows / t / 1e6:9.2f} {t_one / t:11.2f}x "
              f"{cpu_text} {per_cpu}  {check}")


if __name__ == "__main__":
    main()
