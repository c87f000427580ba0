"""Feature attributions the caller computed (SHAP or similar): mean absolute value per feature
over the window (``ml.feature.attribution``) and its change against the reference's
(``ml.feature.attribution.drift``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from otel_ml._internal.core.caps import CappedValues
from otel_ml._internal.core.log import internal_error, log_limited
from otel_ml._internal.monitor.outcome_window import OutcomeWindow, SlotData
from otel_ml.contract import Attr

__all__ = ["Attributions"]


class Attributions:
    """Attributions of one model, summed per slot of the outcome window.

    Args:
        model: Model name (log lines).
        max_features: Distinct features reported (then ``__other__``).
        feature_names: Names of unnamed attribution columns, in order (the monitor's
            ``feature_names`` or the reference's), or empty.
        reference: Mean absolute attribution per feature on the reference data.
        window: The outcome window.
    """

    def __init__(self, model: str, max_features: int, feature_names: Sequence[str],
                 reference: Mapping[str, float], window: OutcomeWindow) -> None:
        self._model = model
        self._names = list(feature_names)
        self._reference = dict(reference)
        self._window = window
        self._features = CappedValues("attribution feature", max_features)

    def record(self, attributions: Any, feature_names: Sequence[str] | None) -> None:
        """Add per-row attributions (rows x features; a frame, a dict of columns or an
        array). Bad input is logged and dropped; never raises."""
        try:
            names, values = self._matrix(attributions, feature_names)
            if values is None:
                log_limited("outcome:attributions", "otel_ml: attributions for model %r "
                            "ignored: %s", self._model, names, count=False)
                return
            abs_v = np.abs(values)
            finite = np.isfinite(abs_v)
            sums = np.where(finite, abs_v, 0.0).sum(axis=0)
            counts = finite.sum(axis=0)
            capped = [self._features(n) for n in names]
            window = self._window
            with window.lock:
                slot = window.current(window.clock())
                for name, s, n in zip(capped, sums.tolist(), counts.tolist()):
                    if n:
                        slot.attr_sum[name] = slot.attr_sum.get(name, 0.0) + s
                        slot.attr_n[name] = slot.attr_n.get(name, 0) + n
                window.changed()
        except Exception as exc:
            internal_error("outcomes.attributions", exc)

    def read(self, window: SlotData) -> tuple[dict[str, float], dict[str, float]]:
        """``(mean absolute attribution, relative change against the reference)`` by feature."""
        current = {f: window.attr_sum[f] / n for f, n in window.attr_n.items() if n}
        drift = {f: current[f] / ref - 1.0 for f, ref in self._reference.items()
                 if f in current and ref > 0}
        return current, drift

    def points(self) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.feature.attribution``."""
        return [(v, {Attr.FEATURE: f}) for f, v in self.read(self._window.sum())[0].items()]

    def drift_points(self) -> list[tuple[float, dict[str, str]]]:
        """Observations of ``ml.feature.attribution.drift``."""
        return [(v, {Attr.FEATURE: f}) for f, v in self.read(self._window.sum())[1].items()]

    def _matrix(self, attributions: Any, feature_names: Sequence[str] | None,
                ) -> tuple[Any, np.ndarray | None]:
        """``(names, (rows, features) floats)``, or ``(why, None)`` for unusable input."""
        names: list[str] | None = list(feature_names) if feature_names is not None else None
        if isinstance(attributions, dict):
            names = names or [str(k) for k in attributions]
            try:
                values = np.column_stack([np.asarray(v, dtype=np.float64).ravel()
                                          for v in attributions.values()])
            except (TypeError, ValueError):
                return "not numeric columns of one length", None
        else:
            columns = getattr(attributions, "columns", None)
            if names is None and columns is not None:
                names = [str(c) for c in columns]
            try:
                values = np.asarray(attributions, dtype=np.float64)
            except (TypeError, ValueError):
                return "not numeric", None
            if values.ndim == 1:
                values = values.reshape(1, -1)
        if values.ndim != 2 or values.shape[1] == 0:
            return f"expected rows x features, got shape {values.shape}", None
        if names is None:
            names = self._names or [f"f{i}" for i in range(values.shape[1])]
        if len(names) != values.shape[1]:
            return f"{values.shape[1]} columns for {len(names)} feature names", None
        return names, values
