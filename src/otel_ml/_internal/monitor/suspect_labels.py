"""Suspect labels: joined labels the model's calibrated confidence contradicts.

Confident learning's rule (Northcutt et al., 2021): a row's confident class is the class of
highest calibrated probability among those whose probability reaches that class's
self-confidence threshold (the mean calibrated probability of the class among reference rows
labelled with it). A label is suspect when the row has a confident class and it is not the
label. Counted by label (``ml.outcome.suspect_labels``), as a share of the window's labelled
rows, and the prediction ids of the most recent suspects are kept for follow-up (ids only,
never values).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from otel_ml._internal.core.instruments import Points
from otel_ml._internal.core.log import internal_error
from otel_ml._internal.monitor.settings import Settings
from otel_ml._internal.reference.calibration import Calibration
from otel_ml._internal.reference.estimation_fit import label_key
from otel_ml._internal.stats.estimation import exported_classes
from otel_ml._internal.stats.ring import SlotRing
from otel_ml.contract import OTHER, Attr

__all__ = ["RECENT_IDS", "SuspectLabels", "suspect_rows"]

#: Prediction ids of suspect labels kept.
RECENT_IDS = 20


def suspect_rows(calibration: Calibration, proba: np.ndarray, label_index: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows whose label is suspect (see the module docs).

    Args:
        calibration: The reference's calibration (curves and thresholds).
        proba: Valid raw probabilities ``(rows, k)``.
        label_index: Column of each row's label.
    """
    cal = calibration.apply(proba)
    confident = np.where(cal >= calibration.thresholds, cal, -1.0)
    best = confident.argmax(axis=1)
    has = confident.max(axis=1) >= 0
    return has & (best != label_index)


class SuspectLabels:
    """Suspect-label counts of one classifier (any thread; never raises).

    Args:
        settings: The monitor's settings (window and slot).
        calibration: The reference's calibration.
        clock: Monotonic seconds.
    """

    def __init__(self, settings: Settings, calibration: Calibration,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._cal = calibration
        self._index = {c: i for i, c in enumerate(calibration.classes)}
        self._exported = dict(zip(map(str, calibration.classes),
                                  exported_classes(calibration.classes)))
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Start from zero (also in a forked child)."""
        self._lock = threading.Lock()
        slots = max(1, math.ceil(self._settings.drift_window_s / self._settings.slot_s))
        self._ring = SlotRing(slots, self._settings.slot_s)
        self._window = np.zeros((slots, 2))  # labelled, suspect per slot
        self._by_class: dict[str, int] = {}
        self._recent: collections.deque[str] = collections.deque(maxlen=RECENT_IDS)

    def labelled(self, predictions: Any, truth: Any, prediction_id: str | None) -> None:
        """Check joined labels against their predictions' calibrated probabilities."""
        try:
            proba = np.asarray(predictions)
            if proba.dtype.kind != "f":
                return
            k = self._cal.k
            proba = proba.astype(np.float64, copy=False)
            if proba.ndim <= 1 and k == 2:
                proba = proba.reshape(-1)
                proba = np.column_stack([1.0 - proba, proba])
            elif proba.ndim == 1 and proba.shape[0] == k:
                proba = proba.reshape(1, k)
            labels = np.asarray(truth, dtype=object).reshape(-1)
            if proba.ndim != 2 or proba.shape[1] != k or proba.shape[0] != len(labels):
                return
            keys = [label_key(v) for v in labels.tolist()]
            idx = np.array([self._index.get(c, -1) for c in keys])
            with np.errstate(invalid="ignore"):
                ok = (idx >= 0) & np.isfinite(proba).all(axis=1) & (
                    (proba >= 0) & (proba <= 1)).all(axis=1) & (
                    np.abs(proba.sum(axis=1) - 1) <= 1e-3)
            if not ok.any():
                return
            mask = suspect_rows(self._cal, proba[ok], idx[ok])
            kept = [c for c, good in zip(keys, ok.tolist()) if good]
            slot = self._ring.slot_at(self._clock())
            with self._lock:
                place, fresh = self._ring.claim(slot)
                if fresh:
                    self._window[place] = 0
                self._window[place, 0] += int(ok.sum())
                self._window[place, 1] += int(mask.sum())
                for c, bad in zip(kept, mask.tolist()):
                    if bad:
                        c = self._exported.get(str(c), OTHER)
                        self._by_class[c] = self._by_class.get(c, 0) + 1
                if mask.any() and prediction_id is not None:
                    self._recent.append(prediction_id)
        except Exception as exc:
            internal_error("suspect_labels", exc)

    def report(self) -> dict[str, Any]:
        """``count`` and ``share`` over the window, ``by_class`` and ``recent`` ids."""
        with self._lock:
            live = self._ring.live(self._ring.slot_at(self._clock()))
            labelled, suspect = self._window[live].sum(axis=0).tolist()
            by_class = dict(self._by_class)
            recent = list(self._recent)
        return {"count": int(suspect), "labelled": int(labelled),
                "share": suspect / labelled if labelled else math.nan,
                "by_class": by_class, "recent": recent}

    def points(self) -> Points:
        """Observations of ``ml.outcome.suspect_labels``."""
        with self._lock:
            items = list(self._by_class.items())
        return [(n, {Attr.CLASS_ACTUAL: c}) for c, n in items]
