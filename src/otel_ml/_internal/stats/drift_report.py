"""The result of a drift evaluation: per feature (:class:`FeatureDrift`) and per window
(:class:`DriftReport`). :mod:`otel_ml._internal.stats.drift` computes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_ml._internal.stats.drift import DriftConfig

__all__ = ["DriftReport", "FeatureDrift"]


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature (or of the predictions) over the window.

    Attributes:
        feature: Feature name (``"__prediction__"`` for the predictions).
        kind: ``"numeric"`` or ``"categorical"``.
        rows: Non-missing values in the window.
        scores: Score of each applicable method (absent when there were no rows).
        pvalues: p-value of each test method.
        exceeded: Each method's own verdict at its threshold.
        drifted: The decision of the configured rule.
        reason: Why, in words (e.g. ``"ks p=1.2e-09 <= 0.0005 and wasserstein 0.21 >= 0.1"``).
        computable: False when no score could be computed (no values in the window, none in
            the reference, ...): ``reason`` says why, and the feature is not drifted.
        not_computable: Applicable methods without a score, each with why (e.g.
            ``{"wasserstein": "the reference standard deviation is 0"}``). Every score and
            p-value present is finite.
    """

    feature: str
    kind: str
    rows: int
    scores: dict[str, float]
    pvalues: dict[str, float]
    exceeded: dict[str, bool]
    drifted: bool
    reason: str
    computable: bool = True
    not_computable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftReport:
    """The drift of every feature and of the predictions over the current window.

    Attributes:
        segment: The segment this report covers (``None``: all traffic).
        rows: Rows in the window.
        window_s: Window length, seconds.
        features: Per-feature drift, in input order.
        prediction: Drift of the prediction distribution, when profiled.
        config: The rule used.
        alpha_per_test: The significance level each test was held to.
        evaluated_at: ``time.time()`` of the evaluation.
        segments: Reports per segment (only on the all-traffic report).
        reason: Why nothing could be evaluated (e.g. no reference), else ``""``.
        multivariate: Multivariate drift over the window (``{}`` without a reference
            projection): ``{"reconstruction_error": {"value", "upper", "rows", "drifted"},
            "centroid_distance": {...}}`` of the feature space (of the embeddings when only
            they are projected), and ``"spaces"``: the same per space (``"features"``,
            ``"embedding"``).
    """

    segment: str | None
    rows: int
    window_s: float
    features: dict[str, FeatureDrift]
    prediction: FeatureDrift | None
    config: DriftConfig
    alpha_per_test: float
    evaluated_at: float
    segments: dict[str, DriftReport] = field(default_factory=dict)
    reason: str = ""
    multivariate: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features (predictions not included), in input order."""
        return [name for name, f in self.features.items() if f.drifted]

    @property
    def drifted(self) -> bool:
        """Whether any feature or the predictions drifted."""
        return bool(self.drifted_features) or bool(self.prediction and self.prediction.drifted)

    @property
    def not_computable(self) -> dict[str, str]:
        """Features (and ``"__prediction__"``) whose drift could not be computed, with why."""
        items = list(self.features.values()) + ([self.prediction] if self.prediction else [])
        return {f.feature: f.reason for f in items if not f.computable}

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready)."""
        def fd(f: FeatureDrift) -> dict[str, Any]:
            return {"kind": f.kind, "rows": f.rows, "scores": f.scores, "pvalues": f.pvalues,
                    "exceeded": f.exceeded, "drifted": f.drifted, "reason": f.reason,
                    "computable": f.computable, "not_computable": f.not_computable}

        return {
            "segment": self.segment, "rows": self.rows, "window_s": self.window_s,
            "alpha_per_test": self.alpha_per_test, "evaluated_at": self.evaluated_at,
            "drifted_features": self.drifted_features,
            "features": {n: fd(f) for n, f in self.features.items()},
            "prediction": fd(self.prediction) if self.prediction else None,
            "segments": {k: r.to_dict() for k, r in self.segments.items()},
            "reason": self.reason, "not_computable": self.not_computable,
            "multivariate": self.multivariate,
        }

    def __str__(self) -> str:
        lines = [f"drift over {self.rows} rows ({self.window_s:g} s window"
                 + (f", segment {self.segment}" if self.segment else "") + ")"]
        items = list(self.features.values()) + ([self.prediction] if self.prediction else [])
        for f in items:
            flag = "DRIFT" if f.drifted else "ok" if f.computable else "n/a"
            lines.append(f"  {f.feature:<24} {flag:<5} {f.reason}")
        return "\n".join(lines) or self.reason
