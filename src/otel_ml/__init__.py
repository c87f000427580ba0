"""otel_ml: make a machine-learning model observable with OpenTelemetry.

Decorate a predict function or wrap a model object; every call becomes a span and metrics
(latency, throughput, errors, batch size, CPU time), and its inputs and predictions feed
bounded statistics compared with a reference profile (drift, data quality), joined later with
ground truth (performance, fairness, concept drift).

Importing this package has no side effects and reads no environment variable.
"""

from otel_ml._internal.core.context import current_prediction_id
from otel_ml._internal.core.config import Telemetry, configure, shutdown
from otel_ml._internal.stats.detectors import ADWIN, DDM, PageHinkley
from otel_ml._internal.stats.drift import DriftConfig, DriftReport
from otel_ml._internal.stats.fairness import FairnessReport
from otel_ml._internal.instrument.model_monitor import ModelMonitor, instrument_model
from otel_ml._internal.monitor.root_cause import RootCauseReport
from otel_ml._internal.stats.performance import PerformanceReport, reference_performance
from otel_ml._internal.instrument.proxy import wrap_model
from otel_ml._internal.reference.builder import ReferenceBuilder
from otel_ml._internal.reference.profile import Reference
from otel_ml._internal.instrument.stages import trace_stage
from otel_ml._internal.instrument.model_info import set_model_info
from otel_ml.version import __version__

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
    "RootCauseReport",
    "Telemetry",
    "__version__",
    "configure",
    "current_prediction_id",
    "instrument_model",
    "reference_performance",
    "set_model_info",
    "shutdown",
    "trace_stage",
    "wrap_model",
]
