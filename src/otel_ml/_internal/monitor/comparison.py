"""Tallies of a version comparison and of a split's assignments, read at collection time.

A :class:`ComparisonTally` holds, for one (champion version, challenger version) pair, the
counters of ``ml.model.comparison.*``: pairs and rows compared, disagreements, sums of absolute
and squared differences, pairs skipped by reason, and the seconds each side spent. A
:class:`SplitTally` counts a split's calls per variant. Both are observers of the shared
instruments (:class:`~otel_ml._internal.core.instruments.Instruments`): their points carry the
model attributes themselves, and they are registered for fork handling like a monitor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from otel_ml._internal.core.instruments import Points
from otel_ml._internal.core.state import Switch
from otel_ml._internal.stats.comparison import OutputComparison
from otel_ml.contract import Assignment, Attr, Role, Skip

__all__ = ["ComparisonTally", "SplitTally"]


class ComparisonTally:
    """Counters of one (champion, challenger) pair; thread-safe, bounded (fixed keys).

    Args:
        name: Model name.
        champion_version: ``ml.model.version`` of the points.
        challenger_version: ``ml.model.challenger.version`` of the points.
        mode: ``"shadow"`` or ``"split"``.
    """

    def __init__(self, name: str, champion_version: str, challenger_version: str,
                 mode: str) -> None:
        self.name = name
        self.champion_version = champion_version
        self.challenger_version = challenger_version
        self.mode = mode
        self.switch = Switch()
        self.closed = False
        self._base = {Attr.MODEL_NAME: name, Attr.MODEL_VERSION: champion_version,
                      Attr.CHALLENGER_VERSION: challenger_version}
        self._collectors: dict[str, Callable[[], Points]] = {
            "ml.model.comparison.info": lambda: [(1, {Attr.COMPARISON_MODE: mode})],
            "ml.model.comparison.pairs": lambda: [(self.pairs, {})],
            "ml.model.comparison.rows": lambda: [(self.rows, {})],
            "ml.model.comparison.disagreements": lambda: [(self.disagreements, {})],
            "ml.model.comparison.difference.absolute": lambda: [(self.abs_diff, {})],
            "ml.model.comparison.difference.squared": lambda: [(self.sq_diff, {})],
            "ml.model.comparison.skipped": lambda: [
                (n, {Attr.REASON: reason}) for reason, n in self.skipped.items()],
            "ml.model.comparison.duration": lambda: [
                (self.champion_s, {Attr.MODEL_ROLE: Role.CHAMPION}),
                (self.challenger_s, {Attr.MODEL_ROLE: Role.CHALLENGER})],
        }
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self.pairs = 0
        self.rows = 0
        self.disagreements = 0
        self.abs_diff = 0.0
        self.sq_diff = 0.0
        self.champion_s = 0.0
        self.challenger_s = 0.0
        # Every reason from the start: the counter exists before the first skip.
        self.skipped: dict[str, int] = dict.fromkeys(Skip.ALL, 0)

    def add(self, result: OutputComparison, champion_s: float, challenger_s: float) -> None:
        """Count one compared pair."""
        with self._lock:
            self.pairs += 1
            self.rows += result.rows
            self.disagreements += result.disagreements
            self.abs_diff += result.abs_diff
            self.sq_diff += result.sq_diff
            self.champion_s += champion_s
            self.challenger_s += challenger_s

    def skip(self, reason: str) -> None:
        """Count one pair not compared (``reason``: one of :data:`Skip.ALL`)."""
        with self._lock:
            self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def observe_metric(self, name: str) -> Points:
        """Points of ``name`` with the pair's attributes (the instruments' callback)."""
        collect = self._collectors.get(name)
        if collect is None or self.switch.off or self.closed:
            return ()
        if self.mode != "shadow" and name != "ml.model.comparison.info":
            return ()  # a split's variants see different inputs: only the pair is declared
        base = self._base
        return [(value, {**base, **attrs}) for value, attrs in collect()]

    def snapshot(self) -> dict[str, Any]:
        """The counters since start, with the agreement rate and mean differences."""
        with self._lock:
            rows, pairs = self.rows, self.pairs
            out: dict[str, Any] = {
                "pairs": pairs, "rows": rows, "disagreements": self.disagreements,
                "abs_diff_sum": self.abs_diff, "sq_diff_sum": self.sq_diff,
                "skipped": dict(self.skipped),
                "champion_seconds": self.champion_s, "challenger_seconds": self.challenger_s,
            }
        out["agreement_rate"] = 1.0 - out["disagreements"] / rows if rows else None
        out["mean_abs_diff"] = out["abs_diff_sum"] / rows if rows else None
        out["rms_diff"] = (out["sq_diff_sum"] / rows) ** 0.5 if rows else None
        out["latency_ratio"] = (out["challenger_seconds"] / out["champion_seconds"]
                                if pairs and out["champion_seconds"] > 0 else None)
        return out

    def after_fork(self) -> None:
        """In a forked child: start from zero."""
        self._reset()

    def flush(self) -> None:
        """Nothing buffered (called with every monitor at shutdown)."""


class SplitTally:
    """A split's calls per variant and how each was assigned.

    Args:
        name: Model name.
        versions: The variants' versions.
    """

    def __init__(self, name: str, versions: list[str]) -> None:
        self.name = name
        self.versions = list(versions)
        self.switch = Switch()
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[tuple[str, str], int] = {
            (v, reason): 0 for v in self.versions for reason in Assignment.ALL}

    def count(self, version: str, reason: str) -> None:
        """Count one call routed to ``version``."""
        with self._lock:
            self.counts[(version, reason)] += 1

    def observe_metric(self, name: str) -> Points:
        """Points of ``ml.model.split.assignments`` (the instruments' callback)."""
        if name != "ml.model.split.assignments" or self.switch.off or self.closed:
            return ()
        return [(n, {Attr.MODEL_NAME: self.name, Attr.MODEL_VERSION: v, Attr.REASON: reason})
                for (v, reason), n in list(self.counts.items())]

    def after_fork(self) -> None:
        """In a forked child: start from zero."""
        self._reset()

    def flush(self) -> None:
        """Nothing buffered (called with every monitor at shutdown)."""
