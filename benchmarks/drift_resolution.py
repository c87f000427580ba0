"""Exact-vs-binned gap of the in-process KS and Wasserstein (issue 14.1, docs/drift.md).

For each case (a) the top decile of N(0, 1) stretched, (b) a 0.2 sigma shift, (c) a 1.3x
scale, (d) stationary, at several window sizes against a 20,000-row N(0, 1) reference: the KS
p-value and Wasserstein / sigma of scipy on the raw samples (exact), of the ten exported bins
(the resolution before the fine bins: the same reference without them) and of the fine bins,
all through ``ModelMonitor``; then the stationary false-alarm rate over seeded windows, the
time of one drift evaluation of 20 features and the drift state per feature.

Run: ``.venv/bin/python benchmarks/drift_resolution.py [--windows 200]`` (prints Markdown).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
from scipy import stats

from otel_ml import ModelMonitor, Reference

REFERENCE_ROWS = 20_000
SIZES = (1_000, 5_000, 10_000, 100_000)


def cases(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    x = rng.normal(size=n)
    stretched = x.copy()
    stretched[stretched > 1.2816] *= 2
    return {"(a) top decile x2": stretched, "(b) shift 0.2 sigma": rng.normal(0.2, 1.0, n),
            "(c) scale 1.3x": rng.normal(0.0, 1.3, n), "(d) stationary": x}


def coarse_only(ref: Reference) -> Reference:
    """The same reference without fine bins (a file saved before them)."""
    feats = {k: dataclasses.replace(p, fine=None) for k, p in ref.features.items()}
    return Reference(features=feats, prediction=ref.prediction, rows=ref.rows)


def drift(ref: Reference, x: np.ndarray) -> tuple[float, float, bool]:
    monitor = ModelMonitor("m", reference=ref)
    monitor.observe(x.reshape(len(x), -1))
    f = monitor.drift_report().features["f0"]
    return f.pvalues["ks"], f.scores["wasserstein"], f.drifted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--windows", type=int, default=200)
    args = parser.parse_args()
    ref_x = np.random.default_rng(1).normal(size=REFERENCE_ROWS)
    fine = Reference.from_data(ref_x.reshape(-1, 1))
    coarse = coarse_only(fine)
    p0 = fine.features["f0"]
    print(f"reference: N(0,1), {REFERENCE_ROWS} rows (seed 1); {p0.bins} exported bins, "
          f"{len(p0.fine.shares)} fine bins; window seed = its size\n")
    print("| case | rows | KS p exact | KS p 10 bins | KS p fine | W exact | W 10 bins | "
          "W fine | drift exact / 10 bins / fine |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in SIZES:
        for name, x in cases(np.random.default_rng(n), n).items():
            pe = stats.ks_2samp(ref_x, x).pvalue
            we = stats.wasserstein_distance(ref_x, x) / ref_x.std()
            de = pe <= 0.01 and we >= 0.1
            pc, wc, dc = drift(coarse, x)
            pf, wf, df = drift(fine, x)
            yn = {True: "yes", False: "no"}
            print(f"| {name} | {n:,} | {pe:.2g} | {pc:.2g} | {pf:.2g} | {we:.3f} | {wc:.3f} | "
                  f"{wf:.3f} | {yn[de]} / {yn[dc]} / {yn[df]} |")
    print(f"\nstationary false alarms over {args.windows} seeded windows (alpha 0.01):\n")
    print("| rows | exact rule | 10 bins | fine | KS p <= 0.05, fine |")
    print("|---|---|---|---|---|")
    for n in (1_000, 10_000):
        counts = [0, 0, 0, 0]
        for seed in range(args.windows):
            x = np.random.default_rng(10_000 + seed).normal(size=n)
            pe = stats.ks_2samp(ref_x, x).pvalue
            we = stats.wasserstein_distance(ref_x, x) / ref_x.std()
            counts[0] += pe <= 0.01 and we >= 0.1
            counts[1] += drift(coarse, x)[2]
            pf, _, df = drift(fine, x)
            counts[2] += df
            counts[3] += pf <= 0.05
        w = args.windows
        print(f"| {n:,} | {counts[0]}/{w} | {counts[1]}/{w} | {counts[2]}/{w} | "
              f"{counts[3]}/{w} |")
    # One drift evaluation of 20 features (10k-row window vs a 100k-row reference).
    rng = np.random.default_rng(0)
    ref20 = Reference.from_data(rng.normal(size=(100_000, 20)))
    for label, ref in (("10 bins", coarse_only(ref20)), ("fine", ref20)):
        monitor = ModelMonitor("m", reference=ref)
        monitor.observe(rng.normal(size=(10_000, 20)))
        monitor.drift_report()
        times = []
        for _ in range(30):
            t0 = time.process_time()
            monitor.drift_report()
            times.append(time.process_time() - t0)
        print(f"\ndrift_report(), 20 features, {label}: median {np.median(times) * 1e3:.2f} ms "
              "CPU (snapshot + evaluation)")


if __name__ == "__main__":
    main()
