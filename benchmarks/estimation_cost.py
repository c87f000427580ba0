#!/usr/bin/env python3
"""Cost of performance estimation without labels (issue 17), counting all of its work.

A 1,000-row call (20 numeric features) of a binary classifier returning probabilities and of
a regressor, each monitored three ways in the same run: not at all (the bare function),
with a reference without estimation models, and with a reference fitted with labels
(estimation on). The call keeps its predictions (a regressor: the loss model's columns too);
the rest of the work is done when the pending calls are folded in, at metric collection (or
a report). Both are counted: the work a call adds (``on - off``, paired rounds) plus the
fold's time per call, measured as a collection after the round's calls minus a collection
with nothing pending (the collection's own, per-collection cost cancels; it is shown apart,
it does not grow with the calls). Estimation's share is that work over the monitoring time
of the call, ``off - bare`` (target <= 10%). The rounds are sustained traffic: past the
first 4,096 rows of a time slot a regressor's estimate reads every 4th row (docs/estimation.md,
"A busy regressor's estimate reads a sample"), as it would on a busy server.

A monitor whose reference has no estimation models runs no estimation code per call (its
``remember`` is the prediction store's own): the table also times that monitor (classifier
and regressor, 1-row and 1,000-row calls) on this tree and on another (``--baseline-src``,
e.g. the main branch's ``src``), in subprocesses that alternate, median of the pairs' ratios.

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


def _time(fn, x, calls: int = CALLS, rounds: int = 0) -> float:
    """Median per-call seconds over the rounds."""
    best = []
    for _ in range(rounds or ROUNDS):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn(x)
        best.append((time.perf_counter() - t0) / calls)
    return statistics.median(best)


def measure_off_only() -> dict:
    """Per-call seconds of monitors without estimation models (1 and 1,000 rows)."""
    from otel_ml import ModelMonitor, Reference
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    X, proba, _, value, _ = _data()
    out = {}
    for kind, pred, options in (("classifier", proba, {"output": "proba"}),
                                ("regressor", value, {"task": "regression"})):
        ref = Reference.from_data(X[:5000], predictions=pred[:5000])
        m = ModelMonitor(f"off-{kind}", reference=ref, meter_provider=MeterProvider(),
                         tracer_provider=TracerProvider(), **options)
        out1, outn = pred[5000:5001].copy(), pred[5000:5000 + ROWS].copy()
        f1, fn = m(lambda x, _o=out1: _o), m(lambda x, _o=outn: _o)
        x1, xn = X[5000:5001].copy(), X[5000:5000 + ROWS].copy()
        out[f"{kind} 1"] = _time(f1, x1, 2000)
        out[f"{kind} {ROWS}"] = _time(fn, xn)
    return out


def measure() -> list[dict[str, float | str]]:
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
        collect = monitors["on"].performance_report  # folds, as a collection does
        collect()
        t: dict[str, list[float]] = {k: [] for k in ("bare", "off", "on", "fold", "pending",
                                                     "empty")}
        for _ in range(PAIRS):  # short interleaved rounds: load hits both sides alike
            t["bare"].append(_time(bare, live_x, rounds=1))
            t["off"].append(_time(monitored["off"], live_x, rounds=1))
            t["on"].append(_time(monitored["on"], live_x, rounds=1))
            t0 = time.perf_counter()
            collect()  # the round's CALLS calls are pending: folded here
            t1 = time.perf_counter()
            collect()  # nothing pending: the collection's own cost
            t2 = time.perf_counter()
            t["fold"].append(((t1 - t0) - (t2 - t1)) / CALLS)
            t["pending"].append(t1 - t0)
            t["empty"].append(t2 - t1)
        b, off, fold, empty = (statistics.median(t[k]) for k in ("bare", "off", "fold", "empty"))
        added = statistics.median(o - f for o, f in zip(t["on"], t["off"]))  # paired
        rows.append({"kind": kind, "bare": b, "off": off, "on": off + added, "added": added,
                     "fold": fold, "empty": empty,
                     # the least-disturbed rounds: each side's fastest (closest to unloaded)
                     "min_bare": min(t["bare"]), "min_off": min(t["off"]),
                     "min_added": min(t["on"]) - min(t["off"]),
                     "min_fold": (min(t["pending"]) - min(t["empty"])) / CALLS})
    return rows


def compare_off(baseline: Path, pairs: int = 5) -> dict[str, tuple[float, float, float]]:
    """``{case: (this tree s, baseline s, median ratio)}`` of :func:`measure_off_only` run in
    alternating subprocesses on this tree and on ``baseline``."""
    runs: dict[str, list[dict]] = {"here": [], "other": []}
    for _ in range(pairs):
        for side, src in (("here", HERE.parent / "src"), ("other", baseline)):
            env = {**os.environ, "PYTHONPATH": str(src)}
            proc = subprocess.run([sys.executable, __file__, "--off-only"], env=env,
                                  capture_output=True, text=True, check=True)
            runs[side].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out = {}
    for case in runs["here"][0]:
        here = [r[case] for r in runs["here"]]
        other = [r[case] for r in runs["other"]]
        out[case] = (statistics.median(here), statistics.median(other),
                     statistics.median(h / o for h, o in zip(here, other)))
    return out


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
          f"per side, median per call (added: median of the paired differences; fold: "
          f"collection after the round's calls minus one with nothing pending, per call); "
          f"{os.cpu_count()} cores shared with other work (a loaded machine)\n")
    print(f"{'model':18s} {'bare':>6s} {'no estimation':>14s} {'estimation':>11s} "
          f"{'added to the call':>18s} {'fold per call':>14s} {'estimation work':>16s} "
          f"{'share of monitoring':>20s} {'collection, none pending':>25s}")
    worst = 0.0
    results = measure()
    for r in results:
        monitoring = r["off"] - r["bare"]
        work = r["added"] + r["fold"]
        share = work / monitoring
        worst = max(worst, share)
        print(f"{r['kind']:18s} {r['bare'] * 1e6:6.1f} {r['off'] * 1e6:14.1f} "
              f"{r['on'] * 1e6:11.1f} {r['added'] * 1e6:18.1f} {r['fold'] * 1e6:14.1f} "
              f"{work * 1e6:16.1f} {share:20.1%} {r['empty'] * 1e6:25.1f}")
    print("\nthe same from each side's fastest round (the least disturbed by the load):")
    print(f"{'model':18s} {'no estimation':>14s} {'added to the call':>18s} {'fold per call':>14s} "
          f"{'estimation work':>16s} {'share of monitoring':>20s}")
    for r in results:
        monitoring = r["min_off"] - r["min_bare"]
        work = r["min_added"] + r["min_fold"]
        print(f"{r['kind']:18s} {r['min_off'] * 1e6:14.1f} {r['min_added'] * 1e6:18.1f} "
              f"{r['min_fold'] * 1e6:14.1f} {work * 1e6:16.1f} {work / monitoring:20.1%}")
    print("(microseconds per call; estimation work = added to the call + fold per call; the "
          "fold runs when metrics are collected, in the reader's thread; the last column is "
          "per collection or report, whatever the traffic: here a performance report, with "
          "its in-process estimates and bands)")
    print(f"\nestimation's work is {worst:.1%} of a {ROWS}-row call's monitoring time at most "
          "(medians; target <= 10%)")
    if args.baseline_src:
        print(f"\nmonitors without estimation models, per call: this tree vs {args.baseline_src} "
              "(alternating subprocesses, medians)")
        for case, (here, other, ratio) in compare_off(args.baseline_src).items():
            print(f"  {case:>16s} rows: {here * 1e6:8.1f} us vs {other * 1e6:8.1f} us"
                  f"  (ratio {ratio:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
