"""Version comparisons of a model: the registry, and the in-process :class:`ComparisonReport`.

A :class:`Comparison` ties a champion's monitor to a challenger's (a shadow pair, or a split's
first variant and another one) and to their :class:`~otel_ml._internal.monitor.comparison.
ComparisonTally`. ``ModelMonitor.comparison_report()`` (the champion's) and the shadow and
split objects' ``comparison_report()`` build the report from public reads of both monitors:
the comparison counters, the distance between their prediction distributions (the same bins
they export), their windowed performance, and the two-sided test of the difference
(:mod:`otel_ml._internal.stats.significance`), with the shipped thresholds.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from otel_ml._internal.core.instruments import instruments_for
from otel_ml._internal.core.state import register_monitor
from otel_ml._internal.monitor.comparison import ComparisonTally
from otel_ml._internal.stats.comparison import distribution_distance
from otel_ml._internal.stats.significance import (SignificanceTest, two_proportion_test,
                                                  welch_test)
from otel_ml.contract import PREDICTION_FEATURE, Attr
from otel_ml.thresholds import THRESHOLDS

__all__ = ["Comparison", "ComparisonReport", "comparisons_of", "report_for"]


@dataclass
class ComparisonReport:
    """A challenger against its champion (``comparison_report()``).

    Attributes:
        model: Model name.
        champion_version: The champion's version (a split's first variant).
        challenger_version: The challenger's version.
        mode: ``"shadow"`` or ``"split"``.
        counters: Pairs and rows compared, disagreements, difference sums, pairs skipped by
            reason, seconds per side since start, with ``agreement_rate``, ``mean_abs_diff``,
            ``rms_diff`` and ``latency_ratio`` (challenger / champion seconds).
        prediction_distance: ``{"psi": .., "js": ..}`` between the two versions' prediction
            counts per bin since start, or ``None`` (no bins: no reference profile).
        performance: Version to its windowed ``count`` and metrics (``accuracy``, ``mae``...).
        tests: Two-sided tests of the difference (accuracy: two-proportion z; MAE: Welch).
        traffic: Version to calls routed to it (a split), else empty.
        others: Further comparisons of the same champion (``comparison_report()`` of a
            monitor with several challengers).
    """

    model: str
    champion_version: str
    challenger_version: str
    mode: str
    counters: dict[str, Any] = field(default_factory=dict)
    prediction_distance: dict[str, float] | None = None
    performance: dict[str, dict[str, float]] = field(default_factory=dict)
    tests: list[SignificanceTest] = field(default_factory=list)
    traffic: dict[str, int] = field(default_factory=dict)
    others: list[ComparisonReport] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The first test's verdict (``"insufficient_data"`` without a test)."""
        return self.tests[0].verdict if self.tests else "insufficient_data"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable)."""
        return {
            "model": self.model, "champion_version": self.champion_version,
            "challenger_version": self.challenger_version, "mode": self.mode,
            "counters": self.counters, "prediction_distance": self.prediction_distance,
            "performance": self.performance, "tests": [t.to_dict() for t in self.tests],
            "traffic": self.traffic, "verdict": self.verdict,
            "others": [o.to_dict() for o in self.others],
        }

    def __str__(self) -> str:
        c = self.counters
        lines = [f"{self.model}: {self.challenger_version} ({self.mode}) against "
                 f"{self.champion_version}"]
        if c.get("agreement_rate") is not None:
            lines.append(f"  agreement {c['agreement_rate']:.4f} over {c['rows']} rows; "
                         f"mean |diff| {c['mean_abs_diff']:.4g}")
        if self.prediction_distance:
            lines.append(f"  prediction PSI {self.prediction_distance['psi']:.4f}, "
                         f"JS {self.prediction_distance['js']:.4f}")
        for t in self.tests:
            lines.append(f"  {t.metric}: {t.champion:.4f} -> {t.challenger:.4f} "
                         f"({t.test} {t.statistic:+.2f}, p={t.p_value:.3g}): {t.verdict}")
        return "\n".join(lines)


class Comparison:
    """One (champion, challenger) pair of monitors and its tally.

    Args:
        champion: The champion's monitor.
        challenger: The challenger's monitor.
        mode: ``"shadow"`` or ``"split"``.
        meter_provider: Provider of the instruments the tally reports through.
        traffic: ``() -> {version: calls}`` of a split, or ``None``.
    """

    def __init__(self, champion: Any, challenger: Any, mode: str, meter_provider: Any = None,
                 traffic: Any = None) -> None:
        self.champion = champion
        self.challenger = challenger
        self.mode = mode
        self.tally = ComparisonTally(champion.name, champion.version, challenger.version, mode)
        self._traffic = traffic
        instruments_for(meter_provider).register(self.tally)
        register_monitor(self.tally)
        _register(self)

    def report(self) -> ComparisonReport:
        """The in-process report of this pair."""
        champion, challenger = self.champion, self.challenger
        perf_a, perf_b = champion.performance_report(), challenger.performance_report()
        performance = {v: {"count": p.count, **p.metrics}
                       for v, p in ((champion.version, perf_a), (challenger.version, perf_b))}
        distance = distribution_distance(_prediction_counts(champion),
                                         _prediction_counts(challenger))
        return ComparisonReport(
            model=champion.name, champion_version=champion.version,
            challenger_version=challenger.version, mode=self.mode,
            counters=self.tally.snapshot() if self.mode == "shadow" else {},
            prediction_distance=None if distance is None else
            {"psi": distance[0], "js": distance[1]},
            performance=performance, tests=_tests(perf_a, perf_b),
            traffic=dict(self._traffic()) if self._traffic is not None else {})

    def close(self) -> None:
        """Stop reporting this pair's metrics."""
        self.tally.closed = True


def _tests(a: Any, b: Any) -> list[SignificanceTest]:
    T = THRESHOLDS
    out = []
    if "accuracy" in a.metrics and "accuracy" in b.metrics:
        out.append(two_proportion_test(
            a.metrics["accuracy"] * a.count, a.count, b.metrics["accuracy"] * b.count, b.count,
            alpha=T.challenger_alpha, min_samples=T.challenger_min_outcomes))
    if "mae" in a.metrics and "mae" in b.metrics:
        out.append(welch_test(a.metrics["mae"], a.metrics.get("rmse", 0.0), a.count,
                              b.metrics["mae"], b.metrics.get("rmse", 0.0), b.count,
                              alpha=T.challenger_alpha, min_samples=T.challenger_min_outcomes))
    return out


def _prediction_counts(monitor: Any) -> dict[str, float]:
    """Prediction observations per bin since start, summed over segments."""
    monitor.flush()
    counts: dict[str, float] = {}
    for value, attrs in monitor.observe_metric("ml.feature.observations"):
        if attrs.get(Attr.FEATURE) == PREDICTION_FEATURE:
            key = str(attrs.get(Attr.BIN))
            counts[key] = counts.get(key, 0.0) + float(value)
    return counts


_registry: weakref.WeakKeyDictionary[Any, list[weakref.ref[Comparison]]] = \
    weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _register(comparison: Comparison) -> None:
    with _lock:
        _registry.setdefault(comparison.champion, []).append(weakref.ref(comparison))


def comparisons_of(monitor: Any) -> list[Comparison]:
    """The live comparisons whose champion is ``monitor``, oldest first."""
    with _lock:
        refs = list(_registry.get(monitor, ()))
    return [c for c in (r() for r in refs) if c is not None and not c.tally.closed]


def report_for(monitor: Any) -> ComparisonReport | None:
    """The report of ``monitor``'s first live comparison, the others in ``others``; ``None``
    when the monitor is no champion."""
    found = comparisons_of(monitor)
    if not found:
        return None
    first = found[0].report()
    first.others = [c.report() for c in found[1:]]
    return first
