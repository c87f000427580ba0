"""Group fairness of a classifier's decisions for one sensitive attribute.

Per group: selection rate (share predicted positive), true-positive rate and false-positive
rate. Across groups: demographic parity difference (largest minus smallest selection rate),
disparate impact ratio (smallest over largest selection rate; the "four-fifths rule" flags
values below 0.8) and equalized odds difference (the larger of the TPR range and the FPR range),
as fairlearn defines them.

A group with fewer than ``min_group_size`` labelled rows is *insufficient*: it is listed with
its count but has no rates, takes no part in the differences, and has no gauges, so that a
handful of rows never reads as fair or unfair. A rate whose denominator is zero (TPR of a group
without actual positives) is ``None`` and left out of the differences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from otel_ml._internal.stats.performance import label_str, label_strings

__all__ = [
    "FAIRNESS_GAPS",
    "FAIRNESS_RATES",
    "MIN_GROUP_SIZE",
    "FairnessReport",
    "GroupRates",
    "fairness_from_counts",
    "fairness_report",
]

#: Default fewest labelled rows for a group to be reported (``ModelMonitor`` attribute
#: ``fairness_min_group_size`` overrides it).
MIN_GROUP_SIZE = 30

#: ``ml.fairness.metric`` values of ``ml.fairness.group.rate``.
FAIRNESS_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")

#: ``ml.fairness.metric`` values of ``ml.fairness.gap``.
FAIRNESS_GAPS = ("demographic_parity_difference", "disparate_impact_ratio",
                 "equalized_odds_difference")


@dataclass(frozen=True)
class GroupRates:
    """One group's counts and rates (rates are ``None`` when undefined or insufficient).

    Attributes:
        count: Labelled rows of the group.
        positives: Rows whose actual class is the positive class.
        selected: Rows predicted positive.
        sufficient: Whether ``count`` reaches the minimum group size.
    """

    count: int
    positives: int
    selected: int
    selection_rate: float | None
    true_positive_rate: float | None
    false_positive_rate: float | None
    sufficient: bool


@dataclass
class FairnessReport:
    """Fairness of the decisions for one sensitive attribute.

    Attributes:
        attribute: The sensitive attribute (column name).
        positive_class: The positive class, as a class-label string.
        min_group_size: Fewest rows for a group to be reported.
        groups: Group to its :class:`GroupRates`.
        demographic_parity_difference: Largest minus smallest selection rate.
        disparate_impact_ratio: Smallest over largest selection rate.
        equalized_odds_difference: Larger of the TPR and FPR ranges.
    """

    attribute: str
    positive_class: str
    min_group_size: int
    groups: dict[str, GroupRates] = field(default_factory=dict)
    demographic_parity_difference: float | None = None
    disparate_impact_ratio: float | None = None
    equalized_odds_difference: float | None = None

    @property
    def insufficient_groups(self) -> list[str]:
        """Groups with too few rows to be judged."""
        return sorted(g for g, r in self.groups.items() if not r.sufficient)

    def gaps(self) -> dict[str, float]:
        """The defined differences, by ``ml.fairness.metric`` name."""
        values = {name: getattr(self, name) for name in FAIRNESS_GAPS}
        return {k: v for k, v in values.items() if v is not None}

    def rates(self) -> list[tuple[str, str, float]]:
        """``(group, metric, value)`` for every defined rate of a sufficient group."""
        out = []
        for group, r in self.groups.items():
            if r.sufficient:
                for name in FAIRNESS_RATES:
                    value = getattr(r, name)
                    if value is not None:
                        out.append((group, name, value))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable)."""
        return {
            "attribute": self.attribute,
            "positive_class": self.positive_class,
            "min_group_size": self.min_group_size,
            "groups": {g: vars(r).copy() for g, r in self.groups.items()},
            "insufficient_groups": self.insufficient_groups,
            **{name: getattr(self, name) for name in FAIRNESS_GAPS},
        }


def fairness_from_counts(attribute: str, counts: Mapping[tuple[str, bool, bool], int],
                         positive_class: str, min_group_size: int = MIN_GROUP_SIZE,
                         ) -> FairnessReport:
    """Fairness from counts of ``(group, actually positive, predicted positive) -> rows``."""
    per_group: dict[str, np.ndarray] = {}  # [tn, fp, fn, tp]
    for (group, actual, predicted), n in counts.items():
        cell = per_group.setdefault(group, np.zeros(4, dtype=np.int64))
        cell[2 * int(bool(actual)) + int(bool(predicted))] += n
    report = FairnessReport(attribute, positive_class, min_group_size)
    for group in sorted(per_group):
        tn, fp, fn, tp = (int(v) for v in per_group[group])
        count, positives, negatives = tn + fp + fn + tp, fn + tp, tn + fp
        sufficient = count >= min_group_size
        report.groups[group] = GroupRates(
            count=count, positives=positives, selected=fp + tp,
            selection_rate=(fp + tp) / count if sufficient else None,
            true_positive_rate=tp / positives if sufficient and positives else None,
            false_positive_rate=fp / negatives if sufficient and negatives else None,
            sufficient=sufficient,
        )
    sel = [r.selection_rate for r in report.groups.values() if r.selection_rate is not None]
    if len(sel) >= 2:
        report.demographic_parity_difference = max(sel) - min(sel)
        if max(sel) > 0:
            report.disparate_impact_ratio = min(sel) / max(sel)
    ranges = []
    for name in ("true_positive_rate", "false_positive_rate"):
        values = [getattr(r, name) for r in report.groups.values() if getattr(r, name) is not None]
        if len(values) >= 2:
            ranges.append(max(values) - min(values))
    if ranges:
        report.equalized_odds_difference = max(ranges)
    return report


def fairness_report(y_true: Any, y_pred: Any, groups: Any, *, attribute: str = "group",
                    positive_class: Any = 1, min_group_size: int = MIN_GROUP_SIZE,
                    ) -> FairnessReport:
    """Fairness of predicted labels against actual ones, offline (e.g. on validation data).

    Args:
        y_true: Actual class labels.
        y_pred: Predicted class labels.
        groups: Sensitive-attribute value of each row.
        attribute: Name of the sensitive attribute, for the report.
        positive_class: The favourable (positive) class.
        min_group_size: Fewest rows for a group to be reported.

    Raises:
        ValueError: Lengths differ or ``min_group_size`` is below 1.
    """
    if min_group_size < 1:
        raise ValueError(f"min_group_size must be at least 1, got {min_group_size!r}")
    actual, predicted, group = label_strings(y_true), label_strings(y_pred), label_strings(groups)
    if not len(actual) == len(predicted) == len(group):
        raise ValueError(f"y_true, y_pred and groups differ in length "
                         f"({len(actual)}, {len(predicted)}, {len(group)})")
    positive = label_str(positive_class)
    counts: dict[tuple[str, bool, bool], int] = {}
    for key in zip(group.tolist(), (actual == positive).tolist(), (predicted == positive).tolist()):
        counts[key] = counts.get(key, 0) + 1
    return fairness_from_counts(attribute, counts, positive, min_group_size)
