"""Alert thresholds, defined once.

``tools/gen_rules.py`` interpolates them into the shipped Prometheus rules, annotations and
runbooks; the demo's live view checks the same conditions in-process. Change a value here and
regenerate (``python tools/gen_rules.py && python tools/gen_docs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

__all__ = ["THRESHOLDS", "Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Every alert threshold, in one place (interpolated into rules, annotations and runbooks)."""

    #: Population stability index over 1h above which a feature drifts (warning / critical).
    psi_warning: float = 0.1
    psi_critical: float = 0.25
    #: PSI over 1h of the prediction distribution (feature ``__prediction__``).
    psi_prediction: float = 0.1
    #: Observations of a feature in the last hour below which drift is not judged.
    drift_min_observations: int = 200
    #: Share of predict calls that raise.
    error_ratio: float = 0.05
    #: p99 predict latency SLO, seconds.
    latency_p99_seconds: float = 0.5
    #: Share of a feature's values that are missing.
    missing_ratio: float = 0.1
    #: Share of a categorical feature's values never seen in the reference.
    unseen_ratio: float = 0.05
    #: Absolute drop of accuracy / macro F1 below the reference (0.05 = 5 points).
    performance_drop: float = 0.05
    #: MAE / RMSE above this multiple of the reference.
    regression_error_factor: float = 1.2
    #: Labelled predictions in the last hour below which performance is not judged.
    performance_min_outcomes: int = 100
    #: Demographic parity / equalized odds difference above this, or disparate impact below.
    fairness_difference: float = 0.1
    fairness_impact_ratio: float = 0.8
    #: Share of requests refused for one reason, and the minimum refusal rate (per second).
    rejected_ratio: float = 0.1
    rejected_min_rate: float = 0.05
    #: PSI over 1h of a feature or of the predictions within one segment above which the
    #: segment alerts (a segment holds fewer rows than the fleet: its noise is larger).
    segment_psi: float = 0.25
    #: A segment alert fires only for a segment that differs from the rest: its PSI (or its
    #: performance drop, or missing share) is at least this multiple of the fleet-wide value.
    #: Problems everywhere (or a segment carrying all traffic) raise the fleet alert instead.
    segment_factor: float = 2.0
    #: Observations of a feature in one segment, per alert window (1h for drift, 5m for
    #: missing values), below which the segment's drift or data quality is not judged.
    segment_min_rows: int = 300
    #: Labelled predictions of one segment in the last hour below which its performance is
    #: not judged (accuracy over 500 rows has a standard error of about 2 points).
    segment_min_outcomes: int = 500
    #: Predict calls of one segment in the 5m window below which its error ratio is not judged
    #: (5 failures in 100 calls is the threshold; fewer calls are noise).
    segment_min_calls: int = 100
    # --- performance without labels (issue 17) ---------------------------------------------
    #: Predictions estimated in the last hour below which the estimate is not judged.
    estimate_min_rows: int = 500
    #: Beyond the estimate's 95% sampling band, the realised accuracy may differ from the
    #: estimate by this much before MLEstimateDiverges fires.
    estimate_tolerance: float = 0.01
    #: The same for MAE, relative to the estimate: the binned loss model is itself off by a
    #: few percent (1.15x NannyML DLE's error on its car-price data), beyond the sampling band.
    estimate_mae_tolerance: float = 0.1
    #: Rows in the drift window (per segment) below which multivariate drift (reconstruction
    #: error, centroid distance) is neither exported nor judged.
    multivariate_min_rows: int = 100
    # --- version comparison (shadow, champion/challenger, A/B split) ---------------------
    #: Share of compared rows on which a challenger's predicted class differs from the
    #: champion's, over 1h, above which MLChallengerDisagreementHigh fires.
    challenger_disagreement_ratio: float = 0.1
    #: Compared rows in the hour below which the disagreement is not judged.
    challenger_min_rows: int = 500
    #: Significance level of the two-sided test of a challenger against its champion
    #: (MLChallengerBetter and MLChallengerWorse together fire in this share of windows
    #: when both versions perform alike). 1% rather than 5%: the rule is evaluated every
    #: minute, so each hour-long window is tested many times.
    challenger_alpha: float = 0.01
    #: Labelled rows of each version in the hour below which the difference is not judged.
    challenger_min_outcomes: int = 1000

    @property
    def challenger_z(self) -> float:
        """|z| above which the difference is significant: the normal quantile of 1 - alpha/2."""
        return round(NormalDist().inv_cdf(1 - self.challenger_alpha / 2), 6)


THRESHOLDS = Thresholds()
