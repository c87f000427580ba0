"""Comparing two versions' outputs for the same inputs, and their prediction distributions.

:func:`compare_outputs` turns a champion's and a challenger's results for one call into the
sufficient statistics the comparison counters add up (rows compared, disagreements, sums of
absolute and squared differences), or the reason they cannot be compared.
:func:`distribution_distance` is the PSI and Jensen-Shannon distance between two versions'
prediction counts per bin, computed as the recording rules compute them (same clamp).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from otel_ml.contract import Skip

__all__ = ["EPSILON", "OutputComparison", "compare_outputs", "distribution_distance"]

#: Share clamp for empty bins, as in the PSI/JS recording rules.
EPSILON = 1e-4


@dataclass(frozen=True)
class OutputComparison:
    """What one call's pair of results adds to the comparison counters.

    Attributes:
        rows: Rows compared.
        disagreements: Rows whose predicted class differs (0 for regression outputs).
        abs_diff: Sum over rows of the absolute difference (numeric outputs; 0 otherwise).
        sq_diff: Sum over rows of the squared difference.
    """

    rows: int
    disagreements: int
    abs_diff: float
    sq_diff: float


def _array(value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return arr


def _is_numeric(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "biuf"


def compare_outputs(champion: Any, challenger: Any, task: str = "auto"
                    ) -> OutputComparison | str:
    """Compare two results of the same call row by row.

    Args:
        champion: The champion's result (array-like: labels, scores, probabilities, values).
        challenger: The challenger's result for the same inputs.
        task: ``"classification"``, ``"regression"`` or ``"auto"``: labels (strings,
            integers, booleans) are classes; floats are values unless the task says
            classification (then whole numbers are classes and one column of probabilities is
            read at 0.5); a matrix of several columns is read as class scores (arg max).

    Returns:
        An :class:`OutputComparison`, or a :class:`~otel_ml.contract.Skip` reason
        (``shape_mismatch`` or ``type_mismatch``). Never raises on odd input.
    """
    try:
        a, b = _array(champion), _array(challenger)
    except Exception:
        return Skip.TYPE_MISMATCH
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if b.ndim == 2 and b.shape[1] == 1:
        b = b[:, 0]
    if a.shape != b.shape or a.ndim > 2:
        return Skip.SHAPE_MISMATCH
    rows = int(a.shape[0])
    if rows == 0:
        return OutputComparison(0, 0, 0.0, 0.0)
    numeric_a, numeric_b = _is_numeric(a), _is_numeric(b)
    if numeric_a != numeric_b:
        return Skip.TYPE_MISMATCH
    if not numeric_a:  # labels: strings, objects
        try:
            differ = np.asarray(a != b, dtype=bool)
        except Exception:
            return Skip.TYPE_MISMATCH
        if differ.shape != a.shape:
            return Skip.TYPE_MISMATCH
        return OutputComparison(rows, int(differ.sum()), 0.0, 0.0)
    fa, fb = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = fb - fa
        if diff.ndim == 2:  # class scores: classes by arg max; differences per row averaged
            disagree = int((np.argmax(fa, axis=1) != np.argmax(fb, axis=1)).sum())
            absd = np.abs(diff).mean(axis=1)
            sqd = (diff * diff).mean(axis=1)
        else:
            if a.dtype.kind in "biu" or b.dtype.kind in "biu" or task == "classification":
                ca, cb = _classes(fa), _classes(fb)
                disagree = int((ca != cb).sum())
            else:
                disagree = 0
            absd, sqd = np.abs(diff), diff * diff
        finite = np.isfinite(absd) & np.isfinite(sqd)
        abs_sum = float(absd[finite].sum())
        sq_sum = float(sqd[finite].sum())
    return OutputComparison(rows, disagree, abs_sum, sq_sum)


def _classes(values: np.ndarray) -> np.ndarray:
    """Whole numbers as they are; one column of probabilities (in [0, 1], not all whole)
    thresholded at 0.5."""
    finite = values[np.isfinite(values)]
    if finite.size and not np.all(finite == np.round(finite)) and finite.min() >= 0.0 \
            and finite.max() <= 1.0:
        return (values >= 0.5).astype(np.float64)
    return values


def distribution_distance(a: Mapping[str, float], b: Mapping[str, float]
                          ) -> tuple[float, float] | None:
    """PSI and Jensen-Shannon distance (base 2) between two count-per-bin mappings.

    Bins present on one side only count as empty on the other; shares are clamped at
    :data:`EPSILON` as the recording rules do. ``None`` when either side has no count.
    """
    total_a, total_b = float(sum(a.values())), float(sum(b.values()))
    if total_a <= 0 or total_b <= 0:
        return None
    psi = js = 0.0
    for key in set(a) | set(b):
        p = max(a.get(key, 0.0) / total_a, EPSILON)
        q = max(b.get(key, 0.0) / total_b, EPSILON)
        psi += (p - q) * math.log(p / q)
        js += 0.5 * p * math.log(2 * p / (p + q)) + 0.5 * q * math.log(2 * q / (p + q))
    return psi, math.sqrt(max(js, 0.0) / math.log(2))
