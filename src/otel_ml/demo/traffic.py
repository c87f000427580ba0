"""The demo's traffic: phases of a day in production, and labels that arrive late.

Phases, in order (lengths are shares of one cycle):

1. ``normal``: requests like the training data, from ``clinic-a``.
2. ``drift``: a new measuring device reads ``bmi`` 30% and ``bp`` 30 mmHg high; the labels
   still follow the true values, so accuracy drops (from 0.74 to about 0.61).
3. ``new-source``: ``clinic-b`` joins and sends 40% of the traffic, its ``s5`` lab values on
   another scale and ``s3`` low, with ``bp`` missing in 8% of its rows. Drift and data-quality
   problems are concentrated in that segment (the per-segment alerts name it); its accuracy
   drops to about 0.51, the fleet's to about 0.65.
4. ``error-burst``: the feature store times out on 30% of calls and is slow on 5%. Failed
   calls have no prediction, hence no label: accuracy is unaffected.
5. ``recovery``: back to normal.
6. ``shadow``: normal traffic; a challenger version runs in shadow of the model (the same
   model with a higher decision threshold): it disagrees on the rows scored between the two
   thresholds, a share known from the study rows and shown live next to the measured one.

The requests replay the rows of the study (drawn with replacement), so the accuracy to expect
while nothing is wrong is the model's accuracy on those rows (0.74), not its held-out
validation accuracy (0.71). Each phase's alerts are listed in :attr:`Phase.expect_alerts`.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from otel_ml.demo.model import DemoData

__all__ = ["CLINIC_B_SHIFT", "DEFAULT_PHASES", "LabelQueue", "Phase", "PhaseClock",
           "TrafficGenerator", "apply_shifts"]


@dataclass(frozen=True)
class Phase:
    """One phase of the traffic.

    Attributes:
        name: Shown in the view and the summary.
        share: Share of the cycle this phase lasts.
        description: One line for the view.
        drift: Multiplicative (``"*"``) or additive (``"+"``) shifts per feature, for clinic-a.
        new_source_share: Share of requests sent by ``clinic-b``.
        failure_rate: Share of calls whose feature lookup fails.
        slow_rate: Share of calls that hit a slow dependency.
        expect_drift: Features whose drift this phase is meant to show (for the summary).
        expect_alerts: Alerts this phase is meant to raise (for the summary).
        challenger: A challenger version runs in shadow during this phase.
    """

    name: str
    share: float
    description: str
    drift: tuple[tuple[str, str, float], ...] = ()
    new_source_share: float = 0.0
    failure_rate: float = 0.0
    slow_rate: float = 0.0
    expect_drift: tuple[str, ...] = ()
    expect_alerts: tuple[str, ...] = ()
    challenger: bool = False


#: clinic-b's shifts: its s5 lab values on another scale and s3 low.
CLINIC_B_SHIFT = (("s5", "+", 1.5), ("s3", "*", 0.7))
#: Share of clinic-b rows whose ``bp`` is missing.
CLINIC_B_MISSING_BP = 0.08

_DRIFT_ALERTS = ("MLFeatureDriftWarning", "MLFeatureDriftCritical", "MLPredictionDrift",
                 "MLModelPerformanceBelowReference")

DEFAULT_PHASES: tuple[Phase, ...] = (
    Phase("normal", 0.2, "requests like the training data"),
    Phase("drift", 0.2, "a new device reads bmi 30% and bp 30 mmHg high: accuracy drops",
          drift=(("bmi", "*", 1.3), ("bp", "+", 30.0)), expect_drift=("bmi", "bp"),
          expect_alerts=_DRIFT_ALERTS),
    Phase("new-source", 0.2, "clinic-b joins: s5 and s3 on other scales, some bp missing",
          new_source_share=0.4, expect_drift=("s3", "s5"),
          expect_alerts=(*_DRIFT_ALERTS, "MLFeatureUnseenCategoriesSurge",
                         "MLSegmentFeatureDrift", "MLSegmentPredictionDrift")),
    Phase("error-burst", 0.15, "the feature store times out on 30% of calls",
          failure_rate=0.3, slow_rate=0.05, expect_alerts=("MLModelErrorRatioHigh",)),
    Phase("recovery", 0.15, "back to normal"),
    Phase("shadow", 0.1, "challenger in shadow", challenger=True),
)


class PhaseClock:
    """Which phase is current at a time since the start; the cycle repeats.

    Args:
        phases: The phases, in order.
        cycle_s: Length of one cycle in seconds.
    """

    def __init__(self, phases: Sequence[Phase], cycle_s: float) -> None:
        if not phases:
            raise ValueError("at least one phase is needed")
        if cycle_s <= 0:
            raise ValueError(f"cycle_s must be positive, got {cycle_s}")
        total = sum(p.share for p in phases)
        self.phases = tuple(phases)
        self.cycle_s = float(cycle_s)
        self._ends = np.cumsum([p.share / total * cycle_s for p in phases])

    def index(self, elapsed_s: float) -> int:
        """Index of the phase current ``elapsed_s`` seconds after the start."""
        t = elapsed_s % self.cycle_s
        return min(int(np.searchsorted(self._ends, t, side="right")), len(self.phases) - 1)

    def start_of(self, index: int) -> float:
        """Offset of phase ``index`` within the cycle, in seconds."""
        return 0.0 if index == 0 else float(self._ends[index - 1])

    def length_of(self, index: int) -> float:
        """Length of phase ``index`` in seconds."""
        return float(self._ends[index]) - self.start_of(index)


class TrafficGenerator:
    """Requests for one phase: rows drawn from the bundled data with that phase's changes.

    Args:
        data: The bundled data set.
        seed: Random seed; the same seed gives the same requests.
    """

    def __init__(self, data: DemoData, seed: int = 0) -> None:
        self.data = data
        self.rng = np.random.default_rng(seed)

    def batch_size(self) -> int:
        """Most requests hold one row; one in five is a small batch of 2 to 16 rows."""
        if self.rng.random() < 0.8:
            return 1
        return int(self.rng.integers(2, 17))

    def request(self, phase: Phase, rows: int) -> tuple[Any, np.ndarray]:
        """A request of ``rows`` rows for ``phase``, and the true labels (known only later)."""
        idx = self.rng.integers(0, len(self.data.target), size=rows)
        frame = self.data.frame.iloc[idx].reset_index(drop=True)
        labels = self.data.target[idx]
        if phase.new_source_share and self.rng.random() < phase.new_source_share:
            frame["source"] = "clinic-b"
            frame = apply_shifts(frame, CLINIC_B_SHIFT)
            missing = self.rng.random(rows) < CLINIC_B_MISSING_BP
            if missing.any():
                frame.loc[missing, "bp"] = np.nan
        elif phase.drift:
            frame = apply_shifts(frame, phase.drift)
        return frame, labels


def apply_shifts(frame: Any, shifts: Sequence[tuple[str, str, float]]) -> Any:
    """``frame`` with each ``(column, "*" or "+", amount)`` shift applied (in place)."""
    for column, op, amount in shifts:
        values = frame[column].astype(float)
        frame[column] = values * amount if op == "*" else values + amount
    return frame


class LabelQueue:
    """Labels waiting to "arrive": each becomes due some seconds after its prediction.

    Args:
        share: Share of predictions that ever get a label.
        delay_s: ``(low, high)`` delay range in seconds.
        seed: Random seed.
    """

    def __init__(self, share: float, delay_s: tuple[float, float], seed: int = 0) -> None:
        self.share = share
        self.delay_s = delay_s
        self.rng = np.random.default_rng(seed + 2)
        self._heap: list[tuple[float, int, str, Any]] = []
        self._n = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, now: float, prediction_id: str, labels: np.ndarray) -> bool:
        """Maybe schedule the labels of one request; ``True`` when they will arrive."""
        if self.rng.random() >= self.share:
            return False
        due = now + float(self.rng.uniform(*self.delay_s))
        self._n += 1
        actual = labels[0] if len(labels) == 1 else labels
        heapq.heappush(self._heap, (due, self._n, prediction_id, actual))
        return True

    def due(self, now: float) -> list[tuple[str, Any]]:
        """Pop every label due at ``now``: ``(prediction_id, actual)``."""
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, _, pid, actual = heapq.heappop(self._heap)
            out.append((pid, actual))
        return out
