"""How a classifier's output is read — class labels, probabilities or decision scores — decided
once per monitor and never guessed again batch by batch.

A batch *shows* a kind (:func:`batch_kind`):

- integers, booleans, strings or other objects: ``label``;
- floats with two or more columns: ``proba`` when every finite value is within [0, 1], else
  ``score`` (one column per class either way);
- one column of floats: ``proba`` when every finite value is within [0, 1] and at least one
  lies strictly between 0 and 1; ``label`` when a value lies outside [0, 1] and every finite
  value is a whole number (classes coded as floats: ``2.0``); ``score`` when a value lies
  outside [0, 1] and one is not whole;
- one column of floats that are all exactly 0.0 or 1.0 (or missing): *ambiguous* (``None``):
  hard labels and probabilities of a confident model look the same.

:class:`OutputReading` decides per declared output (the ``output=`` of a monitor for its
``auto`` calls, ``proba`` for ``predict_proba``, ...): a declared kind is used as is; ``auto``
takes the reference profile's predictions when they show a kind, else the first batch that
shows one. The decision is logged once. A later batch that contradicts it (floats outside
[0, 1] after probabilities, another number of columns, fractions after labels) is a
*mismatch*: its labels are not scored (``ml.model.outcomes.unmatched`` with reason
``output_mismatch``), and nothing is raised.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from otel_ml._internal.core.log import log_limited

__all__ = ["AMBIGUOUS", "LABEL", "MISMATCH", "OK", "PROBA", "SCORE", "OutputReading",
           "batch_kind", "kind_from_profile"]

LABEL, PROBA, SCORE = "label", "proba", "score"
#: States of a read: the kind applies; ambiguous and nothing decided yet; contradicts it.
OK, AMBIGUOUS, MISMATCH = 0, 1, 2

_WHY = {
    LABEL: "class labels (integers, strings, or whole-number floats beyond 0 and 1)",
    PROBA: "probabilities (floats within [0, 1], some strictly between)",
    SCORE: "decision scores (fractional floats beyond [0, 1])",
}


def _width(arr: np.ndarray) -> int:
    return 1 if arr.ndim < 2 else int(arr.shape[1])


def batch_kind(arr: np.ndarray) -> str | None:
    """The kind one batch of classifier output shows, or ``None`` when it is ambiguous (see
    the module docs). ``arr`` is 1-D or 2-D; a cheap vectorised pass over it.

    Example:
        >>> batch_kind(np.array([0.0, 1.0, 1.0])) is None
        True
        >>> batch_kind(np.array([0.0, 0.7])), batch_kind(np.array([1, 0]))
        ('proba', 'label')
        >>> batch_kind(np.array([2.0, 0.0])), batch_kind(np.array([-1.5, 2.0]))
        ('label', 'score')
    """
    if arr.dtype.kind != "f":
        return LABEL if arr.dtype.kind in "biuUSO" else None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.size == 0:
        return None
    outside = (arr < 0.0) | (arr > 1.0)  # NaN compares False; +-inf is outside
    if arr.ndim == 2:
        return SCORE if outside.any() else PROBA
    if outside.any():
        finite = arr[np.isfinite(arr)]
        return LABEL if np.all(finite == np.floor(finite)) else SCORE
    return PROBA if ((arr > 0.0) & (arr < 1.0)).any() else None


def kind_from_profile(profile: Any) -> str | None:
    """The kind a reference profile of numeric predictions shows, or ``None``.

    The profile holds one column (a positive-class probability when the reference had two
    columns of probabilities): ``proba`` when its range is within [0, 1] and a bin's mean lies
    strictly between 0 and 1; ``score`` when its range leaves [0, 1] and a bin's mean is not
    whole. A categorical profile decides nothing (it may be the arg-max of probabilities).
    """
    if profile is None or getattr(profile, "kind", None) != "numeric":
        return None
    centroids = np.asarray(profile.centroids, dtype=np.float64)
    centroids = centroids[np.isfinite(centroids)]
    if not centroids.size or not (np.isfinite(profile.min) and np.isfinite(profile.max)):
        return None
    if profile.min >= 0.0 and profile.max <= 1.0:
        return PROBA if ((centroids > 0.0) & (centroids < 1.0)).any() else None
    return SCORE if np.any(centroids != np.floor(centroids)) else None


class _Decision:
    __slots__ = ("kind", "name", "told", "why", "width")

    def __init__(self, name: str, kind: str | None, why: str = "") -> None:
        self.name = name  # the declared output it is for
        self.kind = kind
        self.why = why
        self.width: int | None = None
        self.told = False  # logged


class OutputReading:
    """The kind each declared output of one monitor is read as (thread-safe).

    Args:
        model: Model name (the log line).
        declared: The monitor's ``output=`` (``auto``, ``label``, ``proba``, ``score``): how
            its ``auto`` calls and ``record_outcomes`` predictions are read.
        reference_kind: The kind the reference profile's predictions show (``None``: none).
    """

    def __init__(self, model: str, declared: str = "auto",
                 reference_kind: str | None = None) -> None:
        self._model = model
        self._lock = threading.Lock()
        self._decisions: dict[str, _Decision] = {}
        if declared != "auto":
            self._auto = _Decision("auto", declared, f"declared (output={declared!r})")
        elif reference_kind is not None:
            self._auto = _Decision("auto", reference_kind,
                                   "shown by the reference profile's predictions")
        else:
            self._auto = _Decision("auto", None)

    @property
    def auto_kind(self) -> str | None:
        """The kind the ``auto`` calls are read as (``None``: not decided yet)."""
        return self._auto.kind

    def read(self, arr: np.ndarray, output: str, rows: int | None = None,
             ) -> tuple[str, int, bool]:
        """How to read one batch of classifier output.

        Args:
            arr: The predictions (0-, 1- or 2-D).
            output: The call's declared output (``auto`` for the monitor's own).
            rows: Rows of the call's input, when known (one row's class probabilities may
                come flat).

        Returns:
            ``(kind, state, decided_now)``: the kind to read with (``proba`` for an ambiguous
            batch: read as probabilities, provisionally), the state (:data:`OK`,
            :data:`AMBIGUOUS`, :data:`MISMATCH`) and whether this batch made the decision.
        """
        decision = self._auto if output == "auto" else self._declared(output)
        if arr.ndim == 1 and rows == 1 and arr.size > 1 and arr.dtype.kind == "f":
            arr = arr.reshape(1, -1)  # one row's class probabilities (or scores), flat
        kind, width = decision.kind, decision.width
        if kind is not None and width is not None:  # the usual case: settled
            return kind, self._check(kind, width, arr), False
        shown = batch_kind(arr)
        with self._lock:
            kind = decision.kind
            if kind is None:
                if shown is None:
                    return PROBA, AMBIGUOUS, False
                decision.kind, decision.width = shown, _width(arr)
                decision.why = "shown by the first predictions that are not ambiguous"
                self._tell(decision)
                return shown, OK, True
            if not decision.told:
                self._tell(decision)
            if decision.width is None and kind != LABEL and _compatible(kind, shown, arr):
                decision.width = _width(arr)
            elif decision.width is None and kind == LABEL:
                decision.width = 1
        return kind, self._check(kind, decision.width or 0, arr), False

    def _declared(self, output: str) -> _Decision:
        decision = self._decisions.get(output)
        if decision is None:
            with self._lock:
                decision = self._decisions.setdefault(
                    output, _Decision(output, output, "declared by the instrumented method"))
        return decision

    @staticmethod
    def _check(kind: str, width: int, arr: np.ndarray) -> int:
        """:data:`OK` when ``arr`` agrees with the decision, else :data:`MISMATCH`."""
        if kind == PROBA:
            if arr.dtype.kind != "f" or _width(arr) != width:
                return MISMATCH
            if arr.size == 1:
                v = float(arr.flat[0])
                return MISMATCH if v < 0.0 or v > 1.0 else OK
            return MISMATCH if ((arr < 0.0) | (arr > 1.0)).any() else OK
        if kind == LABEL:
            return OK if batch_kind(arr) in (None, LABEL) else MISMATCH
        if arr.dtype.kind not in "biuf" or _width(arr) != width:  # scores
            return MISMATCH
        return OK

    def _tell(self, decision: _Decision) -> None:
        """The one log line of a decision (hold the lock)."""
        decision.told = True
        calls = "" if decision.name == "auto" else f" of {decision.name!r} calls"
        log_limited(f"output:{self._model}:{decision.name}",
                    "otel_ml: model %r: predictions%s are read as %s: %s", self._model, calls,
                    _WHY[decision.kind], decision.why, level=logging.INFO, count=False)


def _compatible(kind: str, shown: str | None, arr: np.ndarray) -> bool:
    if kind == PROBA:
        return shown in (None, PROBA)
    return arr.dtype.kind in "biuf"  # scores
