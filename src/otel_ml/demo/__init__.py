"""The embedded demo behind ``otel-ml demo``: a model, its traffic, and a live view of its telemetry.

Needs the ``demo`` extra (scikit-learn, pandas, rich): ``pip install 'otel-ml[demo]'``.
Nothing here is imported by ``import otel_ml``.
"""

from otel_ml.demo.runner import DemoOptions, run_demo
from otel_ml.demo.summary import DemoSummary, PhaseSummary
from otel_ml.demo.traffic import DEFAULT_PHASES, Phase

__all__ = ["DEFAULT_PHASES", "DemoOptions", "DemoSummary", "Phase", "PhaseSummary", "run_demo"]
