#!/usr/bin/env python3
"""Cost of performance estimation without labels on the monitored call (issue 17).

A 1,000-row call (20 numeric features) of a binary classifier returning probabilities and of
a regressor, each monitored three ways in the same run: not at all (the bare function),
with a reference without estimation models, and with a reference fitted with labels
(estimation on). Estimation's share is ``(on - off) / (off - bare)``: what it adds to the
monitoring time of the call (target <= 10%). A monitor whose reference has no estimation
models runs one attribute test per call more than before this feature: the table also times
that monitor on this tree and on another (``--baseline-src``, e.g. the main branch's
``src``), in a subprocess, for 1-row and 1,000-row calls.

    python benchmarks/estimation_cost.py [--baseline-src /path/to/main/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROWS, FEATURES, ROUNDS, CALLS, PAIRS = 1000, 20, 7, 30, 31


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6000, FEATURES))
    score = X[:, :4] @ np.array([1.0, -0.8, 0.5, 0.3])
    y = (score + rng.normal(0, 0.8, len(score)) > 0).astype(int)
    proba = 1 / (1 + np.exp(-score))
    value = 3 * X[:, 0] + X[:, 1] ** 2
    target = value + rng.normal(0, 0.5 + np.abs(X[:, 2]), len(value))
    return X, proba, y, value, target


def _time(fn, x, calls: int = CALLS, between=None, rounds: int = 0) -> float:
    """Median per-call seconds over the rounds; ``between`` runs after each round, untimed
    (the metric collection that a periodic reader runs in its own thread)."""
    best = []
    for _ in range(rounds or ROUNDS):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(x)
        best.append((time.perf_counter() - t0) / calls)
        if between is not None:
            between()
    return statistics.median(best)


def _fold_time(monitor, fn, x) -> float:
    """Seconds of collection-time work (folding pending calls) per call."""
    total = 0.0
    for _ in range(ROUNDS):
        for _ in range(CALLS):
            fn(x)
        t0 = time.perf_counter()
        monitor.performance_report()  # folds, as a collection does
        total += time.perf_counter() - t0
    return total / (ROUNDS * CALLS)


def measure_off_only() -> dict:
    """Per-call seconds of a monitor without estimation models (1 and 1,000 rows)."""
    from otel_ml import ModelMonitor, Reference
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    X, proba, *_ = _data()
    ref = Reference.from_data(X[:5000], predictions=proba[:5000])
    m = ModelMonitor("off", reference=ref, output="proba", meter_provider=MeterProvider(),
                     tracer_provider=TracerProvider())
    out1, outn = proba[5000:5001].copy(), proba[5000:5000 + ROWS].copy()
    f1, fn = m(lambda x: out1), m(lambda x: outn)
    x1, xn = X[5000:5001].copy(), X[5000:5000 + ROWS].copy()
    return {"1": _time(f1, x1, 2000), str(ROWS): _time(fn, xn)}


def measure() -> list[tuple[str, float, float, float, float]]:
    from otel_ml import ModelMonitor, Reference
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    X, proba, y, value, target = _data()
    ref_x, live_x = X[:5000], X[5000:5000 + ROWS].copy()
    rows = []
    for kind, pred, labels, options in (
            ("binary classifier", proba, y, {"output": "proba"}),
            ("regressor", value, target, {"task": "regression"})):
        plain = Reference.from_data(ref_x, predictions=pred[:5000])
        fitted = Reference.from_data(ref_x, predictions=pred[:5000], labels=labels[:5000])
        out = pred[5000:5000 + ROWS].copy()

        def bare(x, _out=out):
            return _out

        monitored, monitors = {}, {}
        for name, ref in (("off", plain), ("on", fitted)):
            m = monitors[name] = ModelMonitor(
                f"{kind}-{name}", reference=ref, meter_provider=MeterProvider(),
                tracer_provider=TracerProvider(), **options)
            monitored[name] = m(bare)
        t: dict[str, list[float]] = {"bare": [], "off": [], "on": [], "fold": []}
        collect = monitors["on"].performance_report
        for _ in range(PAIRS):  # short interleaved rounds: load hits both sides alike
            t["bare"].append(_time(bare, live_x, rounds=1))
            t["off"].append(_time(monitored["off"], live_x, rounds=1))
            t["on"].append(_time(monitored["on"], live_x, rounds=1, between=collect))
        t["fold"].append(_fold_time(monitors["on"], monitored["on"], live_x))
        b, off, fold = (statistics.median(t[k]) for k in ("bare", "off", "fold"))
        added = statistics.median(o - f for o, f in zip(t["on"], t["off"]))  # paired
        rows.append((kind, b, off, off + added, fold))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path,
                        help="another tree's src/ to time the monitor without estimation on")
    parser.add_argument("--off-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.off_only:
        print(json.dumps(measure_off_only()))
        return 0
    print(f"{ROWS}-row calls, {FEATURES} features; {PAIRS} interleaved rounds of {CALLS} calls "
          f"per side, median per call (added: median of the paired differences); "
          f"{os.cpu_count()} cores shared with other work (a loaded machine)\n")
    print(f"{'model':18s} {'bare':>7s} {'no estimation':>14s} {'estimation':>11s} "
          f"{'added to the call':>18s} {'fold at collection':>19s} {'fold / monitoring':>18s}")
    worst = 0.0
    for kind, b, off, on, fold in measure():
        share = (on - off) / (off - b)
        worst = max(worst, share)
        print(f"{kind:18s} {b * 1e6:7.1f} {off * 1e6:14.1f} {on * 1e6:11.1f} {share:18.1%} "
              f"{fold * 1e6:19.1f} {fold / (off - b):18.1%}")
    print("(microseconds per call; the fold runs when metrics are collected, in the reader's "
          "thread, not in the call)")
    print(f"\nestimation adds {worst:.1%} to the call's monitoring time at most "
          "(target <= 10%)")
    if args.baseline_src:
        here = {}
        other = {}
        for src, into in ((HERE.parent / "src", here), (args.baseline_src, other)):
            env = {**os.environ, "PYTHONPATH": str(src)}
            proc = subprocess.run([sys.executable, __file__, "--off-only"], env=env,
                                  capture_output=True, text=True, check=True)
            into.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"\nmonitor without estimation models, per call: this tree vs {args.baseline_src}")
        for rows in ("1", str(ROWS)):
            print(f"  {rows:>5s} rows: {here[rows] * 1e6:8.1f} us vs {other[rows] * 1e6:8.1f} us"
                  f"  (ratio {here[rows] / other[rows]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
