"""Helpers shared by the orchestrator and the peer scripts (standard library + numpy only).

Peer scripts run in other virtual environments; they import this module by path, so it must not
import otel_ml, OpenTelemetry or anything the peers' venvs lack.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "N_FEATURES",
    "SHIFTED",
    "emit",
    "feature_names",
    "make_data",
    "median_time",
    "rss_bytes",
]

N_FEATURES = 20
SHIFTED = tuple(range(0, N_FEATURES, 2))  # half the features (even indexes) move by 0.2 sigma
SHIFT_SIGMA = 0.2
NAN_SHARE = 0.001


def feature_names(n: int = N_FEATURES) -> list[str]:
    """``["f00", "f01", ...]``: the column names every tool sees."""
    return [f"f{i:02d}" for i in range(n)]


def make_data(out: Path, *, stats_rows: int, ref_rows: int, cur_rows: int, seed: int = 20240) -> dict:
    """Write the benchmark's data sets as ``.npy`` files so every venv reads the same bytes.

    - ``stats.npy``: ``stats_rows x 20`` float64 standard normals with 0.1% NaN.
    - ``reference.npy``: ``ref_rows x 20``; feature ``j`` has mean ``j`` and std ``1 + j/10``.
    - ``current.npy``: ``cur_rows x 20`` from the same distributions, except the features in
      ``SHIFTED`` whose mean moves by ``0.2`` of their std.

    Returns:
        Paths and shapes, for the JSON record.
    """
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stats = rng.standard_normal((stats_rows, N_FEATURES))
    stats[rng.random(stats.shape) < NAN_SHARE] = np.nan
    means = np.arange(N_FEATURES, dtype=float)
    stds = 1.0 + np.arange(N_FEATURES) / 10.0
    ref = means + stds * rng.standard_normal((ref_rows, N_FEATURES))
    shift = np.zeros(N_FEATURES)
    shift[list(SHIFTED)] = SHIFT_SIGMA
    cur = means + stds * (shift + rng.standard_normal((cur_rows, N_FEATURES)))
    files = {}
    for name, arr in (("stats", stats), ("reference", ref), ("current", cur)):
        path = out / f"{name}.npy"
        np.save(path, np.ascontiguousarray(arr))
        files[name] = {"path": str(path), "shape": list(arr.shape)}
    return files


def median_time(fn: Callable[[], Any], *, repeats: int, number: int = 1,
                setup: Callable[[], Any] | None = None) -> dict:
    """Median wall time of ``number`` calls of ``fn`` over ``repeats`` repeats (timeit-style).

    ``setup`` runs before each repeat, untimed. The garbage collector is off while timing, as
    timeit does. Returns seconds per call: ``{"median", "min", "max", "repeats", "number"}``.
    """
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times.append((time.perf_counter() - t0) / number)
        finally:
            gc.enable()
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "repeats": repeats, "number": number}


def rss_bytes() -> int:
    """Resident set size of this process, from ``/proc/self/status`` (VmRSS)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def emit(payload: dict) -> None:
    """Print the one JSON object a peer script hands back to the orchestrator."""
    sys.stdout.write("\n@@RESULT@@" + json.dumps(payload, default=_jsonable) + "\n")
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
