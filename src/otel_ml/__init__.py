"""otel_ml: make a machine-learning model observable with OpenTelemetry.

Decorate a predict function or wrap a model object; every call becomes a span and metrics
(latency, throughput, errors, batch size, CPU time), and its inputs and predictions feed
bounded statistics compared with a reference profile (drift, data quality), joined later with
ground truth (performance, fairness, concept drift).

Importing this package has no side effects and reads no environment variable.
"""

from ._context import current_prediction_id
from .config import Telemetry, configure, shutdown
from .detectors import ADWIN, DDM, PageHinkley
from .drift import DriftConfig, DriftReport
from .fairness import FairnessReport
from .monitor import ModelMonitor, instrument_model
from .performance import PerformanceReport, reference_performance
from .proxy import wrap_model
from .reference import Reference, ReferenceBuilder
from .stages import trace_stage
from .version import __version__

__all__ = [
    "ADWIN",
    "DDM",
    "DriftConfig",
    "DriftReport",
    "FairnessReport",
    "ModelMonitor",
    "PageHinkley",
    "PerformanceReport",
    "Reference",
    "ReferenceBuilder",
    "Telemetry",
    "__version__",
    "configure",
    "current_prediction_id",
    "instrument_model",
    "reference_performance",
    "shutdown",
    "trace_stage",
    "wrap_model",
]
