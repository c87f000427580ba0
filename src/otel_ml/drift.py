"""Drift methods, the decision rule's configuration and the drift report.

``METHODS`` is the literal table of drift methods (name, feature kinds, default threshold,
direction); see ``docs/drift.md``.
"""

from otel_ml._internal.stats.drift import METHODS, DriftConfig, DriftMethod, DriftReport, FeatureDrift

__all__ = ["METHODS", "DriftConfig", "DriftMethod", "DriftReport", "FeatureDrift"]
