"""The parts of the benchmark that run in the project's venv: otel_ml, the hand-written baselines,
numpy and scipy. Each function returns plain dicts for the JSON record."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import SHIFTED, feature_names, median_time
from hotpath import Providers, build_variants, predict

__all__ = [
    "collection_cost",
    "otel_ml_drift",
    "overhead",
    "reference_available",
    "scipy_drift",
    "stats_throughput",
]


def reference_available() -> str | None:
    """None when ``otel_ml.Reference.from_data`` and ``drift_report`` exist, else why not."""
    import otel_ml

    if not hasattr(otel_ml.Reference, "from_data"):
        return "otel_ml.Reference.from_data not available yet (issue 3 not landed)"
    # A functional probe: the statistics must really run, or "full" would time a placeholder.
    rng = np.random.default_rng(1)
    p = Providers.build()
    try:
        ref = otel_ml.Reference.from_data(rng.standard_normal((2000, 3)), feature_names=["a", "b", "c"])
        monitor = otel_ml.ModelMonitor("probe", "1", reference=ref, **p.kwargs())
        monitor.observe(rng.standard_normal((500, 3)) + [3.0, 0.0, 0.0])
        monitor.flush()
        report = monitor.drift_report()
        flagged = list(report.drifted_features)
        monitor.close()
    except Exception as exc:  # noqa: BLE001
        return f"otel_ml feature statistics not usable yet ({type(exc).__name__}: {exc})"[:200]
    finally:
        p.shutdown()
    if "a" not in flagged:
        return f"otel_ml drift probe: a 3-sigma shift of 'a' was not flagged (got {flagged})"
    return None


def _loop_seconds(fn: Callable[[Any], Any], x: Any, number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn(x)
    return time.perf_counter() - t0


def _loop_both(fn: Callable[[Any], Any], x: Any, number: int) -> tuple[float, float]:
    """Wall time and process CPU time (all threads, so the span export thread counts too)."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(number):
        fn(x)
    return time.perf_counter() - t0, time.process_time() - c0


def _calibrate(fn: Callable[[Any], Any], x: Any, min_time: float) -> int:
    """Calls per repeat so that one repeat lasts at least ``min_time`` (timeit's autorange)."""
    number = 1
    while True:
        if _loop_seconds(fn, x, number) >= min_time:
            return number
        number *= 2


def overhead(reference: Any, x: np.ndarray, *, repeats: int, min_time: float,
             warmup_calls: int) -> list[dict]:
    """Seconds per call of every variant on input ``x``, medians over interleaved repeats.

    Each variant is warmed up (``warmup_calls``: fills micro-batch buffers, creates metric
    streams), then calibrated; the repeats go round-robin over the variants so that load from
    other processes on the machine spreads over all of them alike. The garbage collector stays
    on (a server runs with it on). Process CPU time is recorded beside wall time: on a shared,
    oversubscribed machine it is the steadier of the two (time spent descheduled is not in it).
    """
    variants = build_variants(reference, floor=x.shape[0] == 1, batch_floor=x.shape[0] > 1)
    try:
        numbers = {}
        for v in variants:
            for _ in range(warmup_calls):
                v.fn(x)
            numbers[v.key] = _calibrate(v.fn, x, min_time)
        samples: dict[str, list[float]] = {v.key: [] for v in variants}
        cpu: dict[str, list[float]] = {v.key: [] for v in variants}
        for _ in range(repeats):
            for v in variants:
                gc.collect()
                n = numbers[v.key]
                wall, used = _loop_both(v.fn, x, n)
                samples[v.key].append(wall / n)
                cpu[v.key].append(used / n)
        out = []
        for v in variants:
            s = samples[v.key]
            out.append({"key": v.key, "label": v.label, "note": v.note,
                        "median": statistics.median(s), "min": min(s), "max": max(s),
                        "cpu_median": statistics.median(cpu[v.key]),
                        "repeats": repeats, "number": numbers[v.key]})
        return out
    finally:
        for v in variants:
            v.close()


def collection_cost(reference: Any, x: np.ndarray, *, calls: int, repeats: int) -> dict:
    """Time of one metric collection (observable callbacks: per-feature stats, drift) for a
    fully monitored model after ``calls`` calls with ``x``."""
    import otel_ml

    p = Providers.build()
    fn = otel_ml.instrument_model(name="bench", version="1", reference=reference, **p.kwargs())(predict)
    try:
        for _ in range(calls):
            fn(x)
        p.reader.get_metrics_data()
        points = 0
        data = p.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    points += len(m.data.data_points)

        def one() -> None:
            fn(x)  # new data, so nothing cached is reused
            p.reader.get_metrics_data()

        t = median_time(one, repeats=repeats)
        t["points"] = points
        return t
    finally:
        fn.monitor.close()
        p.shutdown()


def stats_throughput(reference: Any, X: np.ndarray, *, repeats: int) -> list[dict]:
    """Feature statistics over ``X``: otel_ml ``monitor.observe(X)`` vs one numpy pass.

    ``reference`` only says whether otel_ml's statistics are usable: the monitor gets a
    reference built from ``X``'s own distribution.
    """
    out = []
    t = median_time(lambda: X.sum(), repeats=repeats)
    out.append({"key": "numpy_sum", "label": "numpy X.sum() (one read pass)", "seconds": t})
    t = median_time(lambda: np.nansum(X, axis=0), repeats=repeats)
    out.append({"key": "numpy_nansum", "label": "numpy np.nansum(X, axis=0)", "seconds": t})
    if reference is not None:
        import otel_ml

        # The traffic comes from the reference's distribution (the usual case: most values
        # inside the reference range), so the reference is built from the data's first rows.
        reference = otel_ml.Reference.from_data(X[:100_000], feature_names=feature_names(X.shape[1]))
        p = Providers.build()
        monitor = otel_ml.ModelMonitor("stats", "1", reference=reference, **p.kwargs())
        try:
            monitor.observe(X[:1000])
            t = median_time(lambda: monitor.observe(X), repeats=repeats)
            out.append({"key": "otel_ml_observe", "label": "otel_ml monitor.observe(X)", "seconds": t})
            single = _blas_single_thread()
            if single is not None:
                with single:
                    t = median_time(lambda: monitor.observe(X), repeats=repeats)
                out.append({"key": "otel_ml_observe_blas1", "seconds": t,
                            "label": "otel_ml monitor.observe(X), BLAS limited to 1 thread"})
        finally:
            monitor.close()
            p.shutdown()
    for row in out:
        row["values"] = int(X.size)
        row["mvalues_per_s"] = X.size / row["seconds"]["median"] / 1e6
    return out


def _blas_single_thread() -> Any:
    """A context limiting BLAS to one thread (threadpoolctl), or None without threadpoolctl.

    otel_ml reduces with BLAS (``ones @ block``, ``np.dot``); on a loaded machine a
    multi-threaded BLAS call can wait for a busy core, so the figure is shown both ways.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1, user_api="blas")


def build_reference(ref: np.ndarray, *, repeats: int, blas_one_thread: bool = False
                    ) -> tuple[Any, dict]:
    """``Reference.from_data`` on the 100k x 20 reference: the object and its timing."""
    import contextlib

    import otel_ml

    names = feature_names(ref.shape[1])
    holder: dict[str, Any] = {}
    limit = (_blas_single_thread() if blas_one_thread else None) or contextlib.nullcontext()
    with limit:
        t = median_time(lambda: holder.__setitem__(
            "ref", otel_ml.Reference.from_data(ref, feature_names=names)), repeats=repeats)
    return holder["ref"], t


def otel_ml_drift(reference: Any, cur: np.ndarray, *, repeats: int) -> dict:
    """Ingest of the 10k window and ``drift_report()`` timed separately, fresh monitor each repeat."""
    import otel_ml

    names = feature_names(cur.shape[1])
    ingest, evaluate = [], []
    report = None
    for _ in range(repeats):
        p = Providers.build()
        monitor = otel_ml.ModelMonitor("drift", "1", reference=reference, **p.kwargs())
        try:
            gc.collect()
            t0 = time.perf_counter()
            monitor.observe(cur)
            monitor.flush()
            t1 = time.perf_counter()
            report = monitor.drift_report()
            t2 = time.perf_counter()
            ingest.append(t1 - t0)
            evaluate.append(t2 - t1)
        finally:
            monitor.close()
            p.shutdown()
    flagged = sorted(str(f) for f in getattr(report, "drifted_features", []))
    methods = _methods_of(report)
    return {"tool": "otel_ml", "ingest": _summary(ingest), "evaluate": _summary(evaluate),
            "flagged": flagged, "expected": [names[i] for i in SHIFTED], "methods": methods,
            "rule": "otel_ml default decision (significance after correction + minimum effect size)"}


def _methods_of(report: Any) -> dict:
    """Drift methods a report carries, and those with a p-value (for the table's note)."""
    try:
        first = next(iter(report.features.values()))
        return {"scores": sorted(first.scores), "pvalues": sorted(first.pvalues)}
    except Exception:  # noqa: BLE001
        return {"scores": [], "pvalues": []}


def scipy_drift(ref: np.ndarray, cur: np.ndarray, *, repeats: int) -> dict:
    """``scipy.stats.ks_2samp`` per feature, Bonferroni-corrected at 0.05."""
    from scipy import stats

    names = feature_names(ref.shape[1])
    holder: dict[str, Any] = {}

    def run() -> None:
        holder["p"] = [stats.ks_2samp(ref[:, j], cur[:, j]).pvalue for j in range(ref.shape[1])]

    t = median_time(run, repeats=repeats)
    alpha = 0.05 / ref.shape[1]
    return {"tool": "scipy ks_2samp", "evaluate": t,
            "flagged": [n for n, p in zip(names, holder["p"]) if p < alpha],
            "rule": "KS p-value < 0.05/20 (Bonferroni)"}


def _summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "repeats": len(samples), "number": 1}
