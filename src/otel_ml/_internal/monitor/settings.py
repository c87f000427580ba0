"""One frozen settings object per monitor: every option with its default, validated once.

Components take a :class:`Settings`, never the monitor, so no component keeps a default of its
own. ``ModelMonitor``'s signature shows the same defaults to users (``tests/test_settings.py``
checks that a default monitor's settings equal ``Settings.create``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_ml._internal.data.images import IMAGE_LAYOUTS, PIXEL_RANGES
from otel_ml._internal.data.input_kinds import INPUT_KINDS
from otel_ml._internal.stats.drift import DriftConfig
from otel_ml._internal.stats.fairness import MIN_GROUP_SIZE
from otel_ml.environment_variables import OTEL_ML_CAPTURE_PAYLOADS, OTEL_ML_DRIFT_WINDOW

__all__ = ["DEFAULT_STORE_BYTES", "OUTPUTS", "TASKS", "Settings"]

TASKS = ("auto", "classification", "regression")
OUTPUTS = ("auto", "label", "proba", "score")

#: Bytes the prediction store may hold for multi-row calls (predictions and held inputs).
DEFAULT_STORE_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Every option of a :class:`otel_ml.ModelMonitor`, validated (see its docstring)."""

    name: str
    version: str = "unknown"
    task: str = "auto"
    output: str = "auto"
    feature_names: tuple[str, ...] | None = None
    features_arg: int | str = 0
    segment_by: str | Callable[[tuple, dict], Any] | None = None
    segments: tuple[str, ...] = ()
    max_segments: int = 20
    sensitive_attribute: str | None = None
    positive_class: Any = 1
    classes: tuple[Any, ...] | None = None
    threshold: float = 0.5
    prediction_id_arg: str | None = "prediction_id"
    drift: DriftConfig = field(default_factory=DriftConfig)
    drift_window_s: float = 3600.0
    slot_s: float = 60.0
    max_features: int = 200
    max_categories: int = 50
    outcome_store_size: int = 10_000
    outcome_store_bytes: int = DEFAULT_STORE_BYTES
    outcome_ttl_s: float = 7 * 24 * 3600.0
    fairness_min_group_size: int = MIN_GROUP_SIZE
    capture_payloads: float = 0.0
    redact: frozenset[str] = frozenset()
    statistics: bool = True
    # Input kinds (docs/inputs.md): images, texts and embeddings as derived features.
    input_kind: str = "auto"
    image_layout: str = "auto"
    pixel_range: str = "auto"
    embeddings: str | Callable[[tuple, dict, Any], Any] | None = None

    @property
    def slots(self) -> int:
        """Slots in the window ring: ``drift_window_s / slot_s``, rounded up (a ratio within
        float rounding of a whole number is that number: 1 s of 1/3 s slots is 3 slots)."""
        return max(1, math.ceil(self.drift_window_s / self.slot_s - 1e-9))

    @classmethod
    def create(cls, name: str, version: str = "unknown", *,
               drift_window_s: float | None = None, capture_payloads: float | None = None,
               drift: DriftConfig | None = None, feature_names: Sequence[str] | None = None,
               segments: Sequence[str] | None = None, classes: Sequence[Any] | None = None,
               redact: Sequence[str] = (), **options: Any) -> Settings:
        """Validate the arguments of ``ModelMonitor`` and build the settings.

        Reads ``OTEL_ML_DRIFT_WINDOW`` and ``OTEL_ML_CAPTURE_PAYLOADS`` for the options left
        at ``None`` (at setup, never at import).

        Raises:
            ValueError: An argument is out of range or empty.
            TypeError: An argument has the wrong type.
        """
        _require_str("name", name)
        _require_str("version", version)
        if drift_window_s is None:
            drift_window_s = _env_float(OTEL_ML_DRIFT_WINDOW, 3600.0)
        if capture_payloads is None:
            capture_payloads = _env_float(OTEL_ML_CAPTURE_PAYLOADS, 0.0)
        if drift is not None and not isinstance(drift, DriftConfig):
            raise TypeError(f"drift must be a DriftConfig, got {type(drift).__name__}")
        if isinstance(redact, str):
            raise TypeError(f"redact takes a list of feature names, got the string {redact!r}")
        settings = cls(
            name=name, version=version, drift_window_s=float(drift_window_s),
            capture_payloads=float(capture_payloads), drift=drift or DriftConfig(),
            feature_names=tuple(feature_names) if feature_names is not None else None,
            segments=tuple(segments or ()), classes=tuple(classes) if classes is not None else None,
            redact=frozenset(redact), **options)
        settings._validate()
        return settings

    def _validate(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.task == "regression" and self.output in ("label", "proba"):
            raise ValueError(f"output={self.output!r} describes a classifier, but task is "
                             "'regression': drop one of them")
        if not isinstance(self.features_arg, (int, str)) or isinstance(self.features_arg, bool):
            raise TypeError(f"features_arg must be a position or a keyword name, got {self.features_arg!r}")
        if isinstance(self.features_arg, int) and self.features_arg < 0:
            raise ValueError(f"features_arg must be a position >= 0 or a keyword name, got {self.features_arg!r}")
        if self.segment_by is not None and not (isinstance(self.segment_by, str) or callable(self.segment_by)):
            raise TypeError("segment_by must be a column name or a callable (args, kwargs) -> str")
        for label in ("drift_window_s", "slot_s", "outcome_ttl_s"):
            value = getattr(self, label)
            if not value > 0:
                raise ValueError(f"{label} must be positive, got {value!r}")
        if self.slot_s > self.drift_window_s:
            raise ValueError(f"slot_s ({self.slot_s}) must not exceed drift_window_s ({self.drift_window_s})")
        for label in ("max_segments", "max_features", "max_categories", "fairness_min_group_size"):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        for label, least in (("outcome_store_size", 0), ("outcome_store_bytes", 1)):
            value = getattr(self, label)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{label} must be an integer >= {least}, got {value!r}")
        if not 0.0 <= self.capture_payloads <= 1.0:
            raise ValueError(f"capture_payloads must be within [0, 1], got {self.capture_payloads!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be within (0, 1), got {self.threshold!r}")
        if self.prediction_id_arg is not None and not isinstance(self.prediction_id_arg, str):
            raise TypeError(f"prediction_id_arg must be a keyword name or None, got {self.prediction_id_arg!r}")
        self._validate_inputs()

    def _validate_inputs(self) -> None:
        for label, value, allowed in (("input_kind", self.input_kind, INPUT_KINDS),
                                      ("image_layout", self.image_layout, IMAGE_LAYOUTS),
                                      ("pixel_range", self.pixel_range, PIXEL_RANGES)):
            if value not in allowed:
                raise ValueError(f"{label} must be one of {allowed}, got {value!r}")
        if self.embeddings is not None and not (isinstance(self.embeddings, str)
                                                or callable(self.embeddings)):
            raise TypeError("embeddings must be an input column name or a callable "
                            "(args, kwargs, result) -> (n, d) array")


def _require_str(label: str, value: Any) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{label} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{label} must not be empty")


def _env_float(variable: str, default: float) -> float:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not a number") from None
