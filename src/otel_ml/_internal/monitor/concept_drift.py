"""Concept drift: online change detectors on the stream of per-prediction errors.

Every detector sees the errors of scored labels in arrival order: Page-Hinkley and ADWIN the
0/1 errors of a classifier or the scaled absolute errors of a regressor; DDM, made for a
classifier's error rate, the 0/1 errors only. Each exports its detections
(``ml.concept_drift.detections``) and its state (``ml.concept_drift.state``: 1 while its last
detection is within the drift window) under ``ml.detector`` = its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from otel_ml._internal.stats.detectors import ADWIN, DDM, PageHinkley
from otel_ml.contract import Attr

__all__ = ["DETECTORS", "ConceptDrift"]

#: Detector names (``ml.detector``).
DETECTORS = ("page_hinkley", "adwin", "ddm")

_BASELINE_ROWS = 30  # regression errors that set the scale fed to the detectors
# |error| / MAE has a standard deviation near 0.75 (0/1 errors: at most 0.5): tolerate drifts
# below 5% of the MAE or Page-Hinkley false-alarms.
_REGRESSION_PH_DELTA = 0.05
# DDM with a longer warm start and a 4-sigma drift level: with the paper's 30 values and
# 3 sigma, 45 of 200 stationary streams of 3,000 errors at a 0.1 rate alarmed; with these
# 1 of 100 (2 of 100 at a 0.02 rate), and a 0.1 -> 0.4 change is found after 85 errors
# (median over 50 seeds, at most 166).
_DDM = {"warm_start": 300, "drift_threshold": 4.0}


class ConceptDrift:
    """The detectors of one model, fed under the owner's lock.

    Args:
        window_s: How long a detection keeps a detector in the drift state.
        clock: Monotonic seconds.
    """

    def __init__(self, window_s: float, clock: Callable[[], float]) -> None:
        self._window_s = window_s
        self._clock = clock
        self._detectors = {"page_hinkley": PageHinkley(mode="up"), "adwin": ADWIN(),
                           "ddm": DDM(**_DDM)}
        self._detections = dict.fromkeys(self._detectors, 0)
        self._last = dict.fromkeys(self._detectors, -math.inf)
        self._scale: float | None = None
        self._baseline: list[float] = []

    def feed(self, errors: np.ndarray, *, regression: bool, now: float) -> None:
        """Feed per-row errors (0/1 for a classifier, absolute for a regressor)."""
        values = errors.tolist()
        if regression:  # scaled by the MAE of the first rows: thresholds in its units
            if self._scale is None:
                self._detectors["page_hinkley"].delta = _REGRESSION_PH_DELTA
                self._baseline.extend(values)
                if len(self._baseline) < _BASELINE_ROWS:
                    return
                mean = sum(self._baseline) / len(self._baseline)
                self._scale = mean if mean > 0 else 1.0
                values, self._baseline = self._baseline, []
            values = [v / self._scale for v in values]
        for name, detector in self._detectors.items():
            if regression and name == "ddm":
                continue
            for v in values:
                if detector.update(v).drift_detected:
                    self._detections[name] += 1
                    self._last[name] = now

    def detections(self) -> dict[str, int]:
        """Changes detected so far, by detector."""
        return dict(self._detections)

    def in_drift(self, name: str) -> bool:
        """Whether ``name``'s last detection is within the drift window."""
        return self._clock() - self._last[name] <= self._window_s

    def report(self) -> dict[str, dict[str, object]]:
        """``{detector: {"drift": bool, "detections": int}}``."""
        return {name: {"drift": self.in_drift(name), "detections": n}
                for name, n in self.detections().items()}

    def detection_points(self) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.concept_drift.detections``."""
        return [(n, {Attr.DETECTOR: d}) for d, n in self.detections().items()]

    def state_points(self) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.concept_drift.state``."""
        return [(int(self.in_drift(d)), {Attr.DETECTOR: d}) for d in self._detectors]
