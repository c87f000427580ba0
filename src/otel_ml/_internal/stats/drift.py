"""Drift of binned window counts against a reference profile.

Every method works on the same data: the counts of the current window in the reference's
bins (equal-share quantile bins for numeric features, top categories plus "other" for
categorical ones) and the reference's share of each bin. Methods are declared once, as
records (:data:`METHODS`); :func:`evaluate` scores many features at once, vectorised.

The default decision (:class:`DriftConfig`) flags a feature when its test is significant after
a Bonferroni correction for the number of features tested AND an effect size reaches a minimum:
see ``docs/drift.md`` for the rule, the defaults and the accuracy of the binned approximations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

__all__ = [
    "METHODS",
    "DriftConfig",
    "DriftMethod",
    "DriftReport",
    "FeatureDrift",
    "evaluate",
]

NUMERIC = "numeric"
CATEGORICAL = "categorical"

#: Shares are floored at this value inside PSI's logarithm (empty bins would make it infinite).
PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class DriftMethod:
    """One drift method.

    Attributes:
        name: Value of ``ml.drift.method``.
        kinds: Feature kinds it applies to (``"numeric"``, ``"categorical"``).
        threshold: Default threshold of the method on its own.
        direction: ``"score_above"``: drift when the score >= threshold (a distance);
            ``"pvalue_below"``: drift when the p-value <= threshold (a test).
        description: One line for docs and reports.
    """

    name: str
    kinds: frozenset[str]
    threshold: float
    direction: str
    description: str

    @property
    def is_test(self) -> bool:
        """Whether the method gives a p-value."""
        return self.direction == "pvalue_below"

    def exceeded(self, score: float, pvalue: float | None, threshold: float | None = None) -> bool:
        """Whether the method on its own says "drift" at ``threshold`` (default: its own)."""
        t = self.threshold if threshold is None else threshold
        if self.is_test:
            return pvalue is not None and pvalue <= t
        return score >= t


_BOTH = frozenset((NUMERIC, CATEGORICAL))
_NUM = frozenset((NUMERIC,))
_CAT = frozenset((CATEGORICAL,))

#: Every method, by name. Scores are >= 0; 0 means identical binned distributions.
METHODS: dict[str, DriftMethod] = {m.name: m for m in (
    DriftMethod("psi", _BOTH, 0.2, "score_above",
                "Population stability index, shares floored at 1e-4 (0.1 moderate, 0.2 major)."),
    DriftMethod("jensen_shannon", _BOTH, 0.1, "score_above",
                "Jensen-Shannon distance, base 2 (0..1; square root of the divergence)."),
    DriftMethod("ks", _NUM, 0.01, "pvalue_below",
                "Kolmogorov-Smirnov on the bins: score is the statistic D, two-sample p-value "
                "with n_eff = n*m/(n+m)."),
    DriftMethod("wasserstein", _NUM, 0.1, "score_above",
                "Wasserstein-1 distance between the binned distributions (bin means as "
                "support) divided by the reference standard deviation."),
    DriftMethod("hellinger", _NUM, 0.1, "score_above", "Hellinger distance (0..1)."),
    DriftMethod("chi2", _CAT, 0.01, "pvalue_below",
                "Chi-squared test of homogeneity, window vs reference counts: score is the "
                "statistic."),
)}


@dataclass(frozen=True)
class DriftConfig:
    """How a feature is declared drifted.

    Default rule: ``pvalue(test) <= alpha / n_tested`` (Bonferroni; ``correction="none"`` drops
    the division) AND ``effect >= min_effect``, where the test is KS for numeric features and
    chi-squared for categorical ones, and the effect is the normalised Wasserstein distance
    (numeric, default 0.1 standard deviations) or the Jensen-Shannon distance (categorical,
    default 0.04, about Cohen's w = 0.1). With ``method`` set, that one method decides alone at
    its threshold (``thresholds`` overrides the defaults of :data:`METHODS`).

    Attributes:
        alpha: Family-wise significance level over the features of one evaluation.
        correction: ``"bonferroni"`` or ``"none"``.
        numeric_effect: Effect-size method for numeric features.
        numeric_min_effect: Its minimum.
        categorical_effect: Effect-size method for categorical features.
        categorical_min_effect: Its minimum.
        min_rows: Fewer non-missing window values than this: no decision (not drifted).
        method: Decide with this one method instead of the default rule.
        thresholds: Per-method thresholds used by ``method`` and the per-method flags.
    """

    alpha: float = 0.01
    correction: str = "bonferroni"
    numeric_effect: str = "wasserstein"
    numeric_min_effect: float = 0.1
    categorical_effect: str = "jensen_shannon"
    categorical_min_effect: float = 0.04
    min_rows: int = 50
    method: str | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be within (0, 1), got {self.alpha!r}")
        if self.correction not in ("bonferroni", "none"):
            raise ValueError(f"correction must be 'bonferroni' or 'none', got {self.correction!r}")
        for label, name, kind in (("numeric_effect", self.numeric_effect, NUMERIC),
                                  ("categorical_effect", self.categorical_effect, CATEGORICAL)):
            m = METHODS.get(name)
            if m is None or m.is_test or kind not in m.kinds:
                ok = [n for n, x in METHODS.items() if not x.is_test and kind in x.kinds]
                raise ValueError(f"{label} must be one of {ok}, got {name!r}")
        if self.numeric_min_effect < 0 or self.categorical_min_effect < 0:
            raise ValueError("minimum effects must not be negative")
        if not isinstance(self.min_rows, int) or self.min_rows < 1:
            raise ValueError(f"min_rows must be a positive integer, got {self.min_rows!r}")
        if self.method is not None and self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        for name, value in self.thresholds.items():
            if name not in METHODS:
                raise ValueError(f"unknown method {name!r} in thresholds; known: {list(METHODS)}")
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"threshold of {name!r} must be a non-negative number")

    def threshold(self, method: str) -> float:
        """The threshold in use for ``method``."""
        return float(self.thresholds.get(method, METHODS[method].threshold))


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
    """

    feature: str
    kind: str
    rows: int
    scores: dict[str, float]
    pvalues: dict[str, float]
    exceeded: dict[str, bool]
    drifted: bool
    reason: str


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

    @property
    def drifted_features(self) -> list[str]:
        """Names of the drifted features (predictions not included), in input order."""
        return [name for name, f in self.features.items() if f.drifted]

    @property
    def drifted(self) -> bool:
        """Whether any feature or the predictions drifted."""
        return bool(self.drifted_features) or bool(self.prediction and self.prediction.drifted)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON-ready)."""
        def fd(f: FeatureDrift) -> dict[str, Any]:
            return {"kind": f.kind, "rows": f.rows, "scores": f.scores, "pvalues": f.pvalues,
                    "exceeded": f.exceeded, "drifted": f.drifted, "reason": f.reason}

        return {
            "segment": self.segment, "rows": self.rows, "window_s": self.window_s,
            "alpha_per_test": self.alpha_per_test, "evaluated_at": self.evaluated_at,
            "drifted_features": self.drifted_features,
            "features": {n: fd(f) for n, f in self.features.items()},
            "prediction": fd(self.prediction) if self.prediction else None,
            "segments": {k: r.to_dict() for k, r in self.segments.items()},
            "reason": self.reason,
        }

    def __str__(self) -> str:
        lines = [f"drift over {self.rows} rows ({self.window_s:g} s window"
                 + (f", segment {self.segment}" if self.segment else "") + ")"]
        items = list(self.features.values()) + ([self.prediction] if self.prediction else [])
        for f in items:
            flag = "DRIFT" if f.drifted else "ok"
            lines.append(f"  {f.feature:<24} {flag:<5} {f.reason}")
        return "\n".join(lines) or self.reason


class BinnedReference:
    """The reference side of :func:`evaluate`, padded to arrays once (K features x B bins).

    Args:
        names: Feature names.
        kinds: ``"numeric"``/``"categorical"`` per feature.
        shares: Reference shares per bin, one sequence per feature.
        counts: Non-missing reference values per feature (``m`` of the two-sample tests).
        centroids: Mean of each bin (numeric; ``None`` for categorical).
        stds: Reference standard deviation (numeric; ignored for categorical).
    """

    def __init__(self, names: Sequence[str], kinds: Sequence[str],
                 shares: Sequence[Sequence[float]], counts: Sequence[int],
                 centroids: Sequence[Sequence[float] | None], stds: Sequence[float]) -> None:
        k = len(names)
        self.names = list(names)
        self.kinds = list(kinds)
        self.nbins = np.array([len(s) for s in shares], dtype=np.int64)
        width = int(self.nbins.max()) if k else 1
        self.P = np.zeros((k, width))
        self.C = np.zeros((k, width))
        self.valid = np.zeros((k, width), dtype=bool)
        for i, s in enumerate(shares):
            self.P[i, : len(s)] = s
            self.valid[i, : len(s)] = True
            c = centroids[i]
            if c is not None:
                cc = np.asarray(c, dtype=np.float64)
                self.C[i, : len(cc)] = cc
                self.C[i, len(cc):] = cc[-1] if len(cc) else 0.0
        self.m = np.asarray(counts, dtype=np.float64)
        self.std = np.asarray(stds, dtype=np.float64)
        self.numeric = np.array([kd == NUMERIC for kd in kinds], dtype=bool)
        self.width = width


def evaluate(ref: BinnedReference, window: np.ndarray, config: DriftConfig, *,
             segment: str | None = None, rows: int = 0, window_s: float = 0.0,
             prediction_index: int | None = None) -> DriftReport:
    """Score every feature of ``ref`` on the window counts.

    Args:
        ref: The reference side.
        window: Window counts, shape ``(K, ref.width)`` (padding columns are ignored).
        config: The decision rule.
        segment: Segment the counts belong to (``None``: all traffic).
        rows: Rows in the window (for the report).
        window_s: Window length (for the report).
        prediction_index: Row of ``ref`` that holds the predictions, if any.

    Returns:
        The report; features with fewer than ``config.min_rows`` values get empty scores.
    """
    W = np.where(ref.valid, window, 0).astype(np.float64)
    n = W.sum(axis=1)
    scores, pvalues = _scores(ref, W, n)
    enough = n >= config.min_rows
    tested = int(enough.sum())
    alpha = config.alpha / tested if (config.correction == "bonferroni" and tested) \
        else config.alpha
    features: dict[str, FeatureDrift] = {}
    prediction = None
    for i, name in enumerate(ref.names):
        fd = _decide(ref.kinds[i], name, int(n[i]), bool(enough[i]), i, scores, pvalues,
                     config, alpha)
        if i == prediction_index:
            prediction = fd
        else:
            features[name] = fd
    return DriftReport(segment, int(rows), float(window_s), features, prediction, config, alpha,
                       time.time())


def _decide(kind: str, name: str, n: int, enough: bool, i: int, scores: dict[str, np.ndarray],
            pvalues: dict[str, np.ndarray], config: DriftConfig, alpha: float) -> FeatureDrift:
    methods = [m for m in METHODS.values() if kind in m.kinds]
    if n == 0:
        return FeatureDrift(name, kind, 0, {}, {}, {}, False, "no values in the window")
    sc = {m.name: float(scores[m.name][i]) for m in methods}
    pv = {m.name: float(pvalues[m.name][i]) for m in methods if m.is_test}
    ex = {m.name: m.exceeded(sc[m.name], pv.get(m.name), config.threshold(m.name))
          for m in methods}
    if not enough:
        return FeatureDrift(name, kind, n, sc, pv, ex, False,
                            f"{n} values < min_rows {config.min_rows}: no decision")
    if config.method is not None:
        m = METHODS[config.method]
        if kind not in m.kinds:
            return FeatureDrift(name, kind, n, sc, pv, ex, False,
                                f"{m.name} does not apply to {kind} features")
        t = config.threshold(m.name)
        value = pv[m.name] if m.is_test else sc[m.name]
        op = "<=" if m.is_test else ">="
        drifted = ex[m.name]
        return FeatureDrift(name, kind, n, sc, pv, ex, drifted,
                            f"{m.name} {value:.3g} {op if drifted else 'not ' + op} {t:g}")
    test = "ks" if kind == NUMERIC else "chi2"
    effect = config.numeric_effect if kind == NUMERIC else config.categorical_effect
    minimum = config.numeric_min_effect if kind == NUMERIC else config.categorical_min_effect
    significant = pv[test] <= alpha
    material = sc[effect] >= minimum
    reason = (f"{test} p={pv[test]:.3g} {'<=' if significant else '>'} {alpha:.3g}, "
              f"{effect} {sc[effect]:.3g} {'>=' if material else '<'} {minimum:g}")
    return FeatureDrift(name, kind, n, sc, pv, ex, significant and material, reason)


def _scores(ref: BinnedReference, W: np.ndarray, n: np.ndarray
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    P, valid = ref.P, ref.valid
    with np.errstate(divide="ignore", invalid="ignore"):
        Q = np.where(n[:, None] > 0, W / np.maximum(n, 1)[:, None], 0.0)
        # PSI, with both shares floored so that empty bins stay finite.
        Pe = np.maximum(P, PSI_EPSILON)
        Qe = np.maximum(Q, PSI_EPSILON)
        psi = np.where(valid, (Qe - Pe) * np.log(Qe / Pe), 0.0).sum(axis=1)
        # Jensen-Shannon distance, base 2.
        M = (P + Q) / 2
        kl_p = np.where(P > 0, P * np.log2(P / np.where(M > 0, M, 1)), 0.0).sum(axis=1)
        kl_q = np.where(Q > 0, Q * np.log2(Q / np.where(M > 0, M, 1)), 0.0).sum(axis=1)
        js = np.sqrt(np.clip((kl_p + kl_q) / 2, 0.0, 1.0))
        # Hellinger.
        hellinger = np.sqrt(np.clip(1.0 - np.sqrt(P * Q).sum(axis=1), 0.0, 1.0))
        # KS on the ordered bins, two-sample p-value with the effective sample size.
        cdf_gap = np.cumsum(Q - P, axis=1)
        ks = np.abs(np.where(valid, cdf_gap, 0.0)).max(axis=1)
        m = ref.m
        n_eff = np.round(np.where(n + m > 0, n * m / np.maximum(n + m, 1), 0.0))
        ks_p = _ks_pvalue(ks, n_eff)
        # Wasserstein-1 between the two discrete distributions on the bin means.
        gaps = np.diff(ref.C, axis=1)
        wasserstein_raw = (np.abs(cdf_gap[:, :-1]) * gaps).sum(axis=1)
        wasserstein = np.where(ref.std > 0, wasserstein_raw / np.where(ref.std > 0, ref.std, 1),
                               0.0)
        # Chi-squared test of homogeneity (2 x bins contingency table, empty columns dropped).
        R = P * m[:, None]
        T = W + R
        total = np.maximum(n + m, 1)[:, None]
        E1 = n[:, None] * T / total
        E2 = m[:, None] * T / total
        used = valid & (T > 0)
        chi = np.where(used, (W - E1) ** 2 / np.where(E1 > 0, E1, 1)
                       + (R - E2) ** 2 / np.where(E2 > 0, E2, 1), 0.0).sum(axis=1)
        dof = used.sum(axis=1) - 1
        chi_p = np.where(dof > 0, special.chdtrc(np.maximum(dof, 1), chi), 1.0)
    scores = {"psi": psi, "jensen_shannon": js, "hellinger": hellinger, "ks": ks,
              "wasserstein": wasserstein, "chi2": chi}
    pvalues = {"ks": ks_p, "chi2": chi_p}
    return scores, pvalues


#: From this effective size on, KS p-values use Stephens' fast approximation of the
#: finite-n distribution (absolute error < 0.005 against ``scipy.stats.kstwo``); below, the
#: exact distribution (``kstwo``, about 1.5 ms per feature).
KS_ASYMPTOTIC_FROM = 1000


def _ks_pvalue(d: np.ndarray, n_eff: np.ndarray) -> np.ndarray:
    d = np.clip(d, 0.0, 1.0)
    out = np.ones_like(d)
    large = n_eff >= KS_ASYMPTOTIC_FROM
    if large.any():
        root = np.sqrt(n_eff[large])
        out[large] = special.kolmogorov((root + 0.12 + 0.11 / root) * d[large])
    small = (n_eff > 0) & ~large
    if small.any():
        out[small] = stats.kstwo.sf(d[small], n_eff[small])
    return out


def binned_reference_from_profiles(profiles: Iterable[Any]) -> BinnedReference:
    """A :class:`BinnedReference` from :mod:`otel_ml.reference` profiles (bins as stored)."""
    names, kinds, shares, counts, centroids, stds = [], [], [], [], [], []
    for p in profiles:
        names.append(p.name)
        kinds.append(p.kind)
        shares.append(np.asarray(p.shares, dtype=np.float64))
        counts.append(p.valid)
        if p.kind == NUMERIC:
            centroids.append(_filled_centroids(p))
            stds.append(p.std if math.isfinite(p.std) else 0.0)
        else:
            centroids.append(None)
            stds.append(0.0)
    return BinnedReference(names, kinds, shares, counts, centroids, stds)


def _filled_centroids(p: Any) -> np.ndarray:
    """Bin means, with empty bins at their midpoint (outer bins: at the min/max)."""
    c = np.array(p.centroids, dtype=np.float64)
    if not np.isnan(c).any():
        return c
    lo = np.concatenate(([p.min], p.edges))
    hi = np.concatenate((p.edges, [p.max]))
    mid = (lo + hi) / 2
    c[np.isnan(c)] = mid[np.isnan(c)]
    return np.nan_to_num(c)
