"""The multivariate part of a drift report: :class:`MultivariateDrift`'s report folded into
the :class:`DriftReport` of all traffic and of each segment."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from otel_ml._internal.reference.projection import EMBEDDING, FEATURES
from otel_ml._internal.stats.drift_report import DriftReport

__all__ = ["flatten", "with_multivariate"]


def flatten(spaces: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{space: {quantity: entry}}`` as the report's ``multivariate`` dict: the feature
    space's quantities at the top (the embeddings' when only they are projected), and
    ``"spaces"`` with every space."""
    if not spaces:
        return {}
    main = spaces.get(FEATURES) or spaces.get(EMBEDDING) or {}
    return {**main, "spaces": dict(spaces)}


def with_multivariate(report: DriftReport, part: Mapping[str, Any]) -> DriftReport:
    """``report`` (and its segments' reports) with their multivariate drift."""
    per = part.get("multivariate") or {}
    if not per:
        return report
    segments = {k: dataclasses.replace(r, multivariate=flatten(per.get(k)))
                for k, r in report.segments.items()}
    return dataclasses.replace(report, multivariate=flatten(per.get(None)), segments=segments)
