"""Drift of binned window counts against a reference profile.

Every method works on the same data: the counts of the current window in the reference's
bins (equal-share quantile bins for numeric features, top categories plus "other" for
categorical ones) and the reference's share of each bin. Methods are declared once, as
records (:data:`METHODS`); :func:`evaluate` scores many features at once, vectorised. KS and
Wasserstein of numeric features with fine bins come from :mod:`drift_fine` instead (the
resolution inside the bins; the others stay on the exported bins, as PromQL computes them).

The default decision (:class:`DriftConfig`) flags a feature when its test is significant after
a Bonferroni correction for the number of features tested AND an effect size reaches a minimum:
see ``docs/drift.md`` for the rule, the defaults and the accuracy of the binned approximations.

The result types (:class:`FeatureDrift`, :class:`DriftReport`) live in ``drift_report`` and
are re-exported here.

Degenerate data by design: every score is computed under ``np.errstate(all="ignore")`` and is
either finite or absent with a reason (:attr:`FeatureDrift.not_computable`); a feature whose
reference has one bin (a constant column) is compared on two cells, inside the bin and outside
it, and drifts as soon as one window value lies outside.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from otel_ml._internal.stats.drift_fine import FineReference, FineScores, ks_pvalue
from otel_ml._internal.stats.drift_report import DriftReport, FeatureDrift

__all__ = [
    "METHODS",
    "BinnedReference",
    "DriftConfig",
    "DriftMethod",
    "DriftReport",
    "FeatureDrift",
    "binned_reference_from_profiles",
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
                "Kolmogorov-Smirnov on the fine bins (the bins without them): score is the "
                "statistic D, two-sample p-value with n_eff = n*m/(n+m)."),
    DriftMethod("wasserstein", _NUM, 0.1, "score_above",
                "Wasserstein-1 distance on the fine bins and the tails' sums (the bins' means "
                "without them) divided by the reference standard deviation."),
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


def _relation(value: float, op: str, threshold: float, holds: bool = True) -> str:
    """``"value op threshold"`` with enough digits that the printed comparison is true.

    ``holds=False`` prints ``"value not op threshold"`` (true when the relation fails).
    """
    compare = {"<=": float.__le__, "<": float.__lt__, ">=": float.__ge__, ">": float.__gt__}[op]
    for digits in (3, 4, 6, 8, 12, 17):
        v, t = f"{value:.{digits}g}", f"{threshold:.{digits}g}"
        if not (math.isfinite(value) and math.isfinite(threshold)) or \
                compare(float(v), float(t)) == holds:
            break
    return f"{v} {op if holds else 'not ' + op} {t}"


#: Methods that need ordered bins with known locations (a one-bin feature's two cells are not).
_ORDERED = ("ks", "wasserstein")


class BinnedReference:
    """The reference side of :func:`evaluate`, padded to arrays once (K features x B bins).

    A numeric feature with a single bin (a constant reference column) has two cells instead:
    inside the bin (share 1) and outside it (share 0), filled from :func:`evaluate`'s
    ``outside`` counts: its drift is any value other than the reference's.

    Args:
        names: Feature names.
        kinds: ``"numeric"``/``"categorical"`` per feature.
        shares: Reference shares per bin, one sequence per feature.
        counts: Non-missing reference values per feature (``m`` of the two-sample tests).
        centroids: Mean of each bin (numeric; ``None`` for categorical).
        stds: Reference standard deviation (numeric; ignored for categorical).
        ranges: ``(min, max)`` of each feature's reference values (numeric; for the reasons
            given for one-bin features).
        fines: Per feature, its fine bins (``FineBins`` or ``None``): :attr:`fine` scores KS
            and Wasserstein on them when :func:`evaluate` is given their window cells.
    """

    def __init__(self, names: Sequence[str], kinds: Sequence[str],
                 shares: Sequence[Sequence[float]], counts: Sequence[int],
                 centroids: Sequence[Sequence[float] | None], stds: Sequence[float], *,
                 ranges: Sequence[tuple[float, float]] | None = None,
                 fines: Sequence[Any] | None = None) -> None:
        k = len(names)
        self.names = list(names)
        self.kinds = list(kinds)
        self.nbins = np.array([len(s) for s in shares], dtype=np.int64)
        self.m = np.asarray(counts, dtype=np.float64)
        self.std = np.asarray(stds, dtype=np.float64)
        self.numeric = np.array([kd == NUMERIC for kd in kinds], dtype=bool)
        self.one_bin = self.numeric & (self.nbins == 1) & (self.m > 0)
        self.ranges = list(ranges) if ranges is not None else [(math.nan, math.nan)] * k
        self.fine = FineReference(fines if fines is not None else [None] * k, self.ranges, stds)
        width = max(int(self.nbins.max()) if k else 1, 2 if self.one_bin.any() else 1)
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
        self.P[self.one_bin, :2] = (1.0, 0.0)
        self.valid[self.one_bin, :2] = True
        # Wasserstein's support in reference standard deviations, once (bin means of 1e307
        # would overflow a difference taken before the division).
        self.scaled = self.numeric & (self.std > 0) & np.isfinite(self.std)
        with np.errstate(all="ignore"):
            support = self.C / np.where(self.scaled, self.std, 1.0)[:, None]
            self.gaps = np.where(self.scaled[:, None], np.diff(support, axis=1), 0.0)
        self.width = width
        #: Per method, the features it can score whatever the window (see :func:`_unscored`).
        self.scorable = {name: self.scorable_mask(name).tolist() for name in METHODS}

    def scorable_mask(self, method: str) -> np.ndarray:
        """The features ``method`` can score whatever the window: not the ordered methods on
        a one-bin feature, not Wasserstein without a reference standard deviation."""
        ok = np.ones(len(self.names), dtype=bool)
        if method in _ORDERED:
            ok &= ~self.one_bin
        if method == "wasserstein":
            ok &= self.scaled
        return ok


def evaluate(ref: BinnedReference, window: np.ndarray, config: DriftConfig, *,
             segment: str | None = None, rows: int = 0, window_s: float = 0.0,
             prediction_index: int | None = None, outside: np.ndarray | None = None,
             fine: FineScores | None = None) -> DriftReport:
    """Score every feature of ``ref`` on the window counts.

    Args:
        ref: The reference side.
        window: Window counts, shape ``(K, ref.width)`` (padding columns are ignored).
        config: The decision rule.
        segment: Segment the counts belong to (``None``: all traffic).
        rows: Rows in the window (for the report).
        window_s: Window length (for the report).
        prediction_index: Row of ``ref`` that holds the predictions, if any.
        outside: Window values outside each feature's reference range ``[min, max]`` (the
            window's ``out_of_range`` count), shape ``(K,)``. One-bin features are scored on
            it; without it they are not computable.
        fine: KS and Wasserstein of the features with fine bins (:mod:`drift_fine`): they
            replace the binned ones (PSI, Jensen-Shannon, Hellinger, chi2 stay on the bins).

    Returns:
        The report; features with fewer than ``config.min_rows`` values get no decision.
        Every score and p-value in it is finite; what cannot be computed is absent, with why.
    """
    with np.errstate(all="ignore"):
        W = np.where(ref.valid, window, 0).astype(np.float64)
        one = ref.one_bin
        known = ~one
        if one.any():
            W[one, 1] = 0.0
            n = W.sum(axis=1)
            if outside is not None:
                k = np.clip(np.nan_to_num(np.asarray(outside, dtype=np.float64)[one]), 0, n[one])
                W[one, 0], W[one, 1] = n[one] - k, k
                known = np.ones_like(one)
        n = W.sum(axis=1)
        scores, pvalues = _scores(ref, W, n)
        if fine is not None and fine.rows:  # where finite (sums of 1e308 overflow)
            at = np.asarray(fine.rows)
            for out, v in ((scores["ks"], fine.ks), (pvalues["ks"], fine.ks_p),
                           (scores["wasserstein"], fine.wasserstein)):
                out[at] = np.where(np.isfinite(v), v, out[at])
        values = np.stack([*scores.values(), *pvalues.values()])
    enough = known & (n > 0) & (ref.m > 0) & (n >= config.min_rows)
    tested = int((enough & ~one).sum())
    alpha = config.alpha / tested if (config.correction == "bonferroni" and tested) \
        else config.alpha
    # Plain lists: indexing them per feature is much cheaper than indexing arrays.
    rows_of = dict(zip([*scores, *(f"p:{k}" for k in pvalues)], values.tolist()))
    scored = ref.scorable if np.isfinite(values).all() else _scored(ref, scores, pvalues)
    table = _Table({k: rows_of[k] for k in scores}, {k: rows_of[f"p:{k}"] for k in pvalues},
                   scored)
    outside_counts = W[:, 1].tolist() if W.shape[1] > 1 else [0.0] * len(ref.names)
    counts, known_l, enough_l = n.tolist(), known.tolist(), enough.tolist()
    features: dict[str, FeatureDrift] = {}
    prediction = None
    for i, name in enumerate(ref.names):
        fd = _decide(ref, i, outside_counts[i], int(counts[i]), known_l[i], enough_l[i], table,
                     config, alpha)
        if i == prediction_index:
            prediction = fd
        else:
            features[name] = fd
    return DriftReport(segment, int(rows), float(window_s), features, prediction, config, alpha,
                       time.time())


class _Table(NamedTuple):
    """Per method, per feature: scores, p-values and whether the method has a score."""

    scores: dict[str, list[float]]
    pvalues: dict[str, list[float]]
    scored: Mapping[str, list[bool]]


def _decide(ref: BinnedReference, i: int, outside: float, n: int, known: bool, enough: bool,
            table: _Table, config: DriftConfig, alpha: float) -> FeatureDrift:
    kind, name = ref.kinds[i], ref.names[i]
    why = ("no values in the window" if n == 0 else
           "the reference has no values of this feature (all missing)" if ref.m[i] == 0 else
           f"{_one_bin(ref, i)}: the window's count of values outside it was not given"
           if not known else "")
    if why:
        return FeatureDrift(name, kind, n, {}, {}, {}, False, why, computable=False)
    sc: dict[str, float] = {}
    pv: dict[str, float] = {}
    missing: dict[str, str] = {}
    for m in _APPLICABLE[kind]:
        if not table.scored[m.name][i]:
            missing[m.name] = _unscored(ref, i, m.name)
            continue
        sc[m.name] = table.scores[m.name][i]
        if m.is_test:
            pv[m.name] = table.pvalues[m.name][i]
    ex = {k: METHODS[k].exceeded(v, pv.get(k), config.threshold(k)) for k, v in sc.items()}

    def result(drifted: bool, reason: str, computable: bool = True) -> FeatureDrift:
        return FeatureDrift(name, kind, n, sc, pv, ex, drifted, reason, computable, missing)

    if not enough:
        return result(False, f"{n} values < min_rows {config.min_rows}: no decision")
    if config.method is not None:
        m = METHODS[config.method]
        if kind not in m.kinds:
            return result(False, f"{m.name} does not apply to {kind} features")
        if m.name in missing:
            return result(False, f"{m.name} not computable: {missing[m.name]}", False)
        t = config.threshold(m.name)
        value = pv[m.name] if m.is_test else sc[m.name]
        op = "<=" if m.is_test else ">="
        drifted = ex[m.name]
        return result(drifted, f"{m.name} {_relation(value, op, t, holds=drifted)}")
    if ref.one_bin[i]:
        k = int(round(outside))
        differ = "differ from it" if ref.ranges[i][0] == ref.ranges[i][1] else "lie outside it"
        return result(k > 0, f"{_one_bin(ref, i)}: {k} of {n} values {differ}")
    test = "ks" if kind == NUMERIC else "chi2"
    effect = config.numeric_effect if kind == NUMERIC else config.categorical_effect
    minimum = config.numeric_min_effect if kind == NUMERIC else config.categorical_min_effect
    for needed in (test, effect):
        if needed in missing:
            return result(False, f"{needed} not computable: {missing[needed]}", False)
    significant = pv[test] <= alpha
    material = sc[effect] >= minimum
    reason = (f"{test} p={_relation(pv[test], '<=' if significant else '>', alpha)}, "
              f"{effect} {_relation(sc[effect], '>=' if material else '<', minimum)}")
    return result(significant and material, reason)


def _one_bin(ref: BinnedReference, i: int) -> str:
    """How a one-bin feature's reference reads in a reason."""
    lo, hi = ref.ranges[i]
    if lo == hi:
        return f"the reference is the constant {lo:.6g} (one bin)"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"the reference has one bin [{lo:.6g}, {hi:.6g}]"
    return "the reference has one bin"


#: The methods that apply to each kind of feature, in :data:`METHODS` order.
_APPLICABLE = {kind: [m for m in METHODS.values() if kind in m.kinds]
               for kind in (NUMERIC, CATEGORICAL)}


def _scored(ref: BinnedReference, scores: dict[str, np.ndarray],
            pvalues: dict[str, np.ndarray]) -> dict[str, list[bool]]:
    """Per method, the features it has a finite score (and p-value) for."""
    out = {}
    for name, score in scores.items():
        ok = np.isfinite(score) & ref.scorable_mask(name)
        if name in pvalues:
            ok &= np.isfinite(pvalues[name])
        out[name] = ok.tolist()
    return out


def _unscored(ref: BinnedReference, i: int, method: str) -> str:
    """Why ``method`` has no score for feature ``i`` (see :func:`_scored`)."""
    if ref.one_bin[i] and method in _ORDERED:
        return "one reference bin: window values are only known to be inside or outside it"
    if method == "wasserstein" and not ref.scaled[i]:
        return "the reference standard deviation is 0"
    return "the score is not finite"


def _scores(ref: BinnedReference, W: np.ndarray, n: np.ndarray
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    P, valid = ref.P, ref.valid
    with np.errstate(all="ignore"):
        Q = np.where(n[:, None] > 0, W / np.maximum(n, 1)[:, None], 0.0)
        # PSI, with both shares floored so that empty bins stay finite.
        Pe = np.maximum(P, PSI_EPSILON)
        Qe = np.maximum(Q, PSI_EPSILON)
        psi = np.where(valid, (Qe - Pe) * np.log(Qe / Pe), 0.0).sum(axis=1)
        # Jensen-Shannon distance, base 2: sum(M f(t)) / (2 ln 2), t = (P-Q)/(P+Q), f even (so
        # exactly symmetric) and free of the cancellation of two nearly equal KL terms.
        M = (P + Q) / 2
        a = np.abs(np.where(M > 0, (P - Q) / np.where(M > 0, P + Q, 1.0), 0.0))
        f = np.where(a < 1e-3, a * a * (1.0 + a * a * (1.0 / 6.0 + a * a / 15.0)),  # series
                     (1 + a) * np.log1p(a) + np.where(a < 1, (1 - a) * np.log1p(-a), 0.0))
        jsd = (M * f).sum(axis=1) / (2 * math.log(2))
        js = np.sqrt(np.clip(jsd, 0.0, 1.0))
        # Hellinger.
        hellinger = np.sqrt(np.clip(1.0 - np.sqrt(P * Q).sum(axis=1), 0.0, 1.0))
        # KS on the ordered bins, two-sample p-value with the effective sample size.
        cdf_gap = np.cumsum(Q - P, axis=1)
        ks = np.abs(np.where(valid, cdf_gap, 0.0)).max(axis=1)
        m = ref.m
        n_eff = np.round(np.where(n + m > 0, n * m / np.maximum(n + m, 1), 0.0))
        ks_p = ks_pvalue(ks, n_eff)
        # Wasserstein-1 between the two discrete distributions on the bin means, in reference
        # standard deviations.
        wasserstein = (np.abs(cdf_gap[:, :-1]) * ref.gaps).sum(axis=1)
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


def binned_reference_from_profiles(profiles: Iterable[Any]) -> BinnedReference:
    """A :class:`BinnedReference` from reference profiles (bins as stored)."""
    names, kinds, shares, counts, centroids, stds, ranges, fines = [], [], [], [], [], [], [], []
    for p in profiles:
        names.append(p.name)
        kinds.append(p.kind)
        shares.append(np.asarray(p.shares, dtype=np.float64))
        counts.append(p.valid)
        if p.kind == NUMERIC:
            centroids.append(_filled_centroids(p))
            stds.append(p.std if math.isfinite(p.std) else 0.0)
            ranges.append((float(p.min), float(p.max)))
            fines.append(p.fine if len(p.shares) > 1 else None)
        else:
            centroids.append(None)
            stds.append(0.0)
            ranges.append((math.nan, math.nan))
            fines.append(None)
    return BinnedReference(names, kinds, shares, counts, centroids, stds, ranges=ranges,
                           fines=fines)


def _filled_centroids(p: Any) -> np.ndarray:
    """Bin means, with empty bins at their midpoint (outer bins: at the min/max)."""
    c = np.array(p.centroids, dtype=np.float64)
    if not np.isnan(c).any():
        return c
    lo = np.concatenate(([p.min], p.edges))
    hi = np.concatenate((p.edges, [p.max]))
    mid = lo / 2 + hi / 2  # never overflows, unlike (lo + hi) / 2 at 1e308
    c[np.isnan(c)] = mid[np.isnan(c)]
    return np.nan_to_num(c)
