"""The metric contract: every instrument and attribute otel_ml emits, in one place.

Dashboards, recording and alert rules, docs and tests are checked against this module.
Names follow the OpenTelemetry conventions (dotted, ``ml.`` namespace, UCUM units, no
``total``); :func:`prometheus_name` gives the series name Prometheus stores, which is the same
through the Collector's ``prometheus`` exporter and through the Python Prometheus exporter
because no gauge uses the unit ``1`` (see ``docs/metrics.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Attr",
    "Check",
    "Unmatched",
    "Excluded",
    "Kind",
    "MetricSpec",
    "METRICS",
    "EXTERNAL_METRICS",
    "LATENCY_BUCKETS",
    "BATCH_SIZE_RANGES",
    "batch_size_range",
    "ERROR_BUCKETS",
    "ALL_SEGMENTS",
    "NO_SEGMENT",
    "OTHER",
    "PREDICTION_FEATURE",
    "INPUT_FEATURE",
    "by_name",
    "prometheus_label",
    "Role",
    "Skip",
    "Assignment",
    "COMPARISON_METRICS",
    "prometheus_name",
]

#: Value that replaces a user-supplied attribute value once its cap is reached.
OTHER = "__other__"

#: ``ml.segment`` of rows whose call had no segment: the attribute is always present on
#: segmented metrics, so PromQL can sum over it or select one value without special cases.
NO_SEGMENT = "__none__"

#: ``ml.segment`` of windowed gauges aggregated over every segment (never on counters:
#: summing a counter over ``ml.segment`` gives the total).
ALL_SEGMENTS = "__all__"

#: ``ml.feature.name`` used for the prediction distribution (scores or classes).
PREDICTION_FEATURE = "__prediction__"


class Attr:
    """Attribute keys (data-point attributes; Prometheus label = dots replaced by ``_``)."""

    MODEL_NAME = "ml.model.name"
    MODEL_VERSION = "ml.model.version"
    MODEL_TASK = "ml.model.task"
    ERROR_TYPE = "error.type"
    OUTCOME = "ml.outcome"  # span only: "success" | "error"
    PREDICTION_ID = "ml.prediction.id"  # span only: never a metric attribute
    BATCH_SIZE = "ml.batch.size"  # span only: the exact rows
    BATCH_SIZE_RANGE = "ml.batch.size.range"  # metric: one of BATCH_SIZE_RANGES
    OUTLIER_RATE = "ml.outlier.rate"  # span only
    STAGE = "ml.stage.name"
    DIRECTION = "ml.stage.direction"  # "in" | "out"
    ROWS_IN = "ml.stage.rows_in"  # span only
    ROWS_OUT = "ml.stage.rows_out"  # span only
    FEATURE = "ml.feature.name"
    BIN = "ml.feature.bin"
    CHECK = "ml.quality.check"
    SEGMENT = "ml.segment"
    METHOD = "ml.drift.method"
    CLASS_PREDICTED = "ml.class.predicted"
    CLASS_ACTUAL = "ml.class.actual"
    PERF_METRIC = "ml.performance.metric"
    FAIRNESS_ATTRIBUTE = "ml.fairness.attribute"
    FAIRNESS_GROUP = "ml.fairness.group"
    FAIRNESS_METRIC = "ml.fairness.metric"
    DETECTOR = "ml.detector"
    REASON = "ml.reason"
    GPU_DEVICE = "ml.gpu.device"  # process-wide GPU metrics: the device index
    PAYLOAD_INPUTS = "ml.payload.inputs"  # span only, opt-in (capture_payloads): JSON rows
    PAYLOAD_PREDICTIONS = "ml.payload.predictions"  # span only, opt-in: JSON predictions
    PAYLOAD_TRUNCATED = "ml.payload.truncated"  # span only: True when rows/size were cut
    MULTIVARIATE_SPACE = "ml.multivariate.space"  # "features" | "embedding"


    # Version comparison (shadow, champion/challenger, A/B split).
    MODEL_ROLE = "ml.model.role"  # one of Role.ALL: spans, and ml.model.comparison.duration
    CHALLENGER_VERSION = "ml.model.challenger.version"  # the version compared with ml.model.version
    COMPARISON_MODE = "ml.comparison.mode"  # "shadow" | "split"


class Check:
    """Values of ``ml.quality.check`` (data-quality problems found in inputs and predictions)."""

    MISSING = "missing"  # None / NaN / null
    NON_FINITE = "non_finite"  # +inf / -inf
    OUT_OF_RANGE = "out_of_range"  # below the reference minimum or above its maximum
    UNSEEN_CATEGORY = "unseen_category"  # a category the reference never saw
    TYPE_MISMATCH = "type_mismatch"  # e.g. a string where a number was expected
    SCHEMA_MISSING_COLUMN = "schema_missing_column"  # an expected feature absent from the input
    SCHEMA_EXTRA_COLUMN = "schema_extra_column"  # an input column that is not a feature
    SCHEMA_FEATURE_COUNT = "schema_feature_count"  # positional input of the wrong width
    # Input kinds (images, text, embeddings: docs/inputs.md)
    CHANNELS_MISMATCH = "channels_mismatch"  # images with another channel count or layout
    EMPTY_TEXT = "empty_text"  # texts that are empty or whitespace only
    WRONG_DIMENSION = "wrong_dimension"  # embeddings of another width than the reference's
    ALL = (MISSING, NON_FINITE, OUT_OF_RANGE, UNSEEN_CATEGORY, TYPE_MISMATCH,
           SCHEMA_MISSING_COLUMN, SCHEMA_EXTRA_COLUMN, SCHEMA_FEATURE_COUNT,
           CHANNELS_MISMATCH, EMPTY_TEXT, WRONG_DIMENSION)


class Unmatched:
    """Values of ``ml.reason`` on ``ml.model.outcomes.unmatched`` (labels not scored)."""

    UNKNOWN_ID = "unknown_id"  # no prediction with this id was remembered
    EXPIRED = "expired"  # the prediction was older than outcome_ttl_s
    EVICTED = "evicted"  # evicted from the full store before its label arrived
    DUPLICATE = "duplicate"  # the prediction already had its label
    WRONG_SHAPE = "wrong_shape"  # not one label per predicted row
    WRONG_TYPE = "wrong_type"  # the label or the predictions are unusable
    MISSING_LABEL = "missing_label"  # the label is NaN or None
    UNSEEN_CLASS = "unseen_class"  # not one of the model's classes
    # Data quality of the predictions: they contradict how the model's output was decided to
    # be read (floats outside [0, 1] after probabilities, another number of columns).
    OUTPUT_MISMATCH = "output_mismatch"
    ALL = (UNKNOWN_ID, EXPIRED, EVICTED, DUPLICATE, WRONG_SHAPE, WRONG_TYPE, MISSING_LABEL,
           UNSEEN_CLASS, OUTPUT_MISMATCH)


class Excluded:
    """Values of ``ml.reason`` on ``ml.model.estimation.excluded``: prediction rows left out
    of the performance estimate (a data-quality problem of the predictions)."""

    MISSING = "missing"  # NaN or infinite probability or prediction
    OUT_OF_RANGE = "out_of_range"  # a probability outside [0, 1]
    NOT_NORMALISED = "not_normalised"  # a row of probabilities not summing to 1
    WRONG_CLASS_COUNT = "wrong_class_count"  # not one column per class of the reference
    ALL = (MISSING, OUT_OF_RANGE, NOT_NORMALISED, WRONG_CLASS_COUNT)


#: ``ml.feature.name`` of data-quality issues about the input as a whole (e.g. its width).
INPUT_FEATURE = "__input__"


class Kind(str, Enum):
    """Instrument kinds. ``OBSERVABLE_*`` are read by callbacks at collection time."""

    COUNTER = "counter"
    HISTOGRAM = "histogram"
    OBSERVABLE_COUNTER = "observable_counter"
    OBSERVABLE_GAUGE = "observable_gauge"


#: Predict latency, seconds: 100 µs to 60 s.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

#: ``ml.batch.size.range`` values: rows per call in ranges growing by powers of 4. Counted
#: in process (an index into a list, see :func:`batch_size_range`), not with a histogram:
#: a histogram record per call costs as much as the rest of a single-row call's metrics.
BATCH_SIZE_RANGES: tuple[str, ...] = (
    "0", "1", "2-4", "5-16", "17-64", "65-256", "257-1024", "1025-4096", "4097-16384", "16385+",
)  # fmt: skip


def batch_size_range(rows: int) -> int:
    """Index into :data:`BATCH_SIZE_RANGES` of a call with ``rows`` rows (``rows >= 0``)."""
    if rows <= 1:
        return rows if rows >= 0 else 0
    return min(1 + ((rows - 1).bit_length() + 1) // 2, len(BATCH_SIZE_RANGES) - 1)

#: Absolute error of a regression prediction, in the target's own unit.
ERROR_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 1000.0,
)  # fmt: skip

_MODEL = (Attr.MODEL_NAME, Attr.MODEL_VERSION)


@dataclass(frozen=True)
class MetricSpec:
    """One instrument of the contract.

    Attributes:
        name: OpenTelemetry instrument name.
        kind: Instrument kind.
        unit: UCUM unit (curly-brace annotations add no Prometheus suffix).
        description: One line, shown in Prometheus ``# HELP`` and the docs.
        attributes: Data-point attribute keys, in the order dashboards group by them.
        buckets: Explicit histogram bucket boundaries (histograms only).
    """

    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...] = _MODEL
    buckets: tuple[float, ...] | None = None

    @property
    def prometheus(self) -> str:
        """Base Prometheus series name (without ``_bucket``/``_sum``/``_count``)."""
        return prometheus_name(self.name, self.unit, self.kind)

    @property
    def prometheus_series(self) -> tuple[str, ...]:
        """Every series name Prometheus stores for this instrument."""
        base = self.prometheus
        if self.kind is Kind.HISTOGRAM:
            return (f"{base}_bucket", f"{base}_sum", f"{base}_count")
        return (base,)


def _m(name: str, kind: Kind, unit: str, description: str, *attrs: str, buckets=None) -> MetricSpec:
    return MetricSpec(name, kind, unit, description, _MODEL + attrs, buckets)


C, H, OC, OG = Kind.COUNTER, Kind.HISTOGRAM, Kind.OBSERVABLE_COUNTER, Kind.OBSERVABLE_GAUGE
A = Attr

#: Every metric otel_ml emits. Keys are the OpenTelemetry names.
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        # --- calls (issue: core) -------------------------------------------------------
        _m("ml.model.predict.duration", H, "s", "Duration of predict calls.",
           A.ERROR_TYPE, buckets=LATENCY_BUCKETS),
        _m("ml.model.predict.calls", OC, "{call}",
           "Predict calls, successful or not, by the call's segment (``__none__`` when "
           "segment_by names a column: one call's rows may span segments).", A.SEGMENT),
        _m("ml.model.predictions", OC, "{prediction}", "Rows predicted (successful calls)."),
        _m("ml.model.predict.errors", OC, "{error}",
           "Predict calls that raised, by the call's segment and exception type.",
           A.SEGMENT, A.ERROR_TYPE),
        _m("ml.model.predict.cpu.time", OC, "s", "Thread CPU time spent inside predict calls."),
        _m("ml.model.batches", OC, "{call}",
           "Successful predict calls by rows per call (mean rows per call = predictions / batches).",
           A.BATCH_SIZE_RANGE),
        _m("ml.model.info", OG, "{model}", "1 for each model version live in this process.",
           A.MODEL_TASK),
        _m("ml.pipeline.stage.duration", H, "s", "Duration of traced pipeline stages.",
           A.STAGE, A.ERROR_TYPE, buckets=LATENCY_BUCKETS),
        _m("ml.pipeline.stage.rows", C, "{row}", "Rows into and out of pipeline stages.",
           A.STAGE, A.DIRECTION),
        _m("ml.pipeline.stage.errors", C, "{error}", "Pipeline stages that raised.",
           A.STAGE, A.ERROR_TYPE),
        # --- features, drift, data quality (issue: reference and drift) ----------------
        _m("ml.feature.observations", OC, "{value}",
           "Non-missing feature values per reference bin (fleet-wide drift is computed from these).",
           A.FEATURE, A.SEGMENT, A.BIN),
        _m("ml.reference.bin.share", OG, "{share}",
           "Share of the reference profile in each bin (the expected share under no drift).",
           A.FEATURE, A.BIN),
        _m("ml.feature.mean", OG, "{value}", "Mean of a numeric feature over the drift window.",
           A.FEATURE, A.SEGMENT),
        _m("ml.feature.stddev", OG, "{value}",
           "Standard deviation of a numeric feature over the drift window.", A.FEATURE, A.SEGMENT),
        _m("ml.feature.drift.score", OG, "{score}",
           "Drift score of a feature (or of the predictions) by method, over the drift window.",
           A.FEATURE, A.SEGMENT, A.METHOD),
        _m("ml.feature.drift.pvalue", OG, "{probability}",
           "p-value of the drift test, where the method defines one.", A.FEATURE, A.SEGMENT, A.METHOD),
        _m("ml.feature.drifted", OG, "{feature}",
           "1 when the feature's drift decision holds over the drift window, else 0.",
           A.FEATURE, A.SEGMENT),
        _m("ml.drift.window.rows", OG, "{row}", "Rows in the current drift window.", A.SEGMENT),
        _m("ml.data_quality.issues", OC, "{value}",
           "Data-quality problems found in inputs, by feature and check.",
           A.FEATURE, A.SEGMENT, A.CHECK),
        _m("ml.model.outliers", OC, "{row}", "Rows scored as outliers against the reference.",
           A.SEGMENT),
        # --- outcomes, performance, fairness (issue: ground truth) ---------------------
        _m("ml.model.outcomes", OC, "{outcome}",
           "Labelled predictions by predicted and actual class (confusion counts).",
           A.SEGMENT, A.CLASS_PREDICTED, A.CLASS_ACTUAL),
        _m("ml.model.outcomes.unmatched", OC, "{outcome}",
           "Labels that could not be joined to a prediction, by reason.", A.REASON),
        _m("ml.model.error.absolute", H, "{error}",
           "Absolute error of regression predictions once labels arrive.", A.SEGMENT,
           buckets=ERROR_BUCKETS),
        _m("ml.model.error.squared", OC, "{error}",
           "Sum of squared errors of regression predictions (RMSE numerator).", A.SEGMENT),
        _m("ml.model.performance", OG, "{score}",
           "Windowed performance (accuracy, f1_macro, precision_macro, recall_macro, mae, rmse, "
           "brier, log_loss).", A.SEGMENT, A.PERF_METRIC),
        _m("ml.model.performance.reference", OG, "{score}",
           "Performance on validation data, stored with the reference profile.", A.PERF_METRIC),
        _m("ml.fairness.group.rate", OG, "{score}",
           "Selection rate, true-positive rate and false-positive rate per sensitive group.",
           A.FAIRNESS_ATTRIBUTE, A.FAIRNESS_GROUP, A.FAIRNESS_METRIC),
        _m("ml.fairness.gap", OG, "{score}",
           "Demographic parity difference, disparate impact ratio, equalized odds difference.",
           A.FAIRNESS_ATTRIBUTE, A.FAIRNESS_METRIC),
        _m("ml.concept_drift.detections", OC, "{detection}",
           "Changes detected in the stream of prediction errors.", A.DETECTOR),
        _m("ml.concept_drift.state", OG, "{state}",
           "1 while a detector's last detection is within the drift window, else 0.", A.DETECTOR),
        _m("ml.feature.attribution", OG, "{score}", "Mean absolute attribution per feature.",
           A.FEATURE),
        _m("ml.feature.attribution.drift", OG, "{score}",
           "Drift of mean absolute attribution against the reference attributions.", A.FEATURE),
        _m("ml.model.error_rate.by_bin", OG, "{score}",
           "Error rate of labelled predictions per reference bin of each feature.",
           A.FEATURE, A.BIN),
        _m("ml.model.requests.rejected", C, "{request}",
           "Requests refused before predict, by reason.", A.REASON),
        # --- multivariate drift (issue 16: images, text, embeddings) ---------------------
        _m("ml.drift.reconstruction_error", OG, "{score}",
           "Mean PCA reconstruction error of the rows in the drift window (standardised "
           "features, or embeddings), by space.", A.SEGMENT, A.MULTIVARIATE_SPACE),
        _m("ml.drift.reconstruction_error.upper", OG, "{score}",
           "Upper bound of the mean reconstruction error of reference windows of the same "
           "size (bootstrap); above it the joint distribution drifted.",
           A.SEGMENT, A.MULTIVARIATE_SPACE),
        _m("ml.drift.centroid_distance", OG, "{score}",
           "Mean distance of the rows in the drift window to the reference centroid, by space.",
           A.SEGMENT, A.MULTIVARIATE_SPACE),
        _m("ml.drift.centroid_distance.upper", OG, "{score}",
           "Upper bound of the mean centroid distance of reference windows of the same size.",
           A.SEGMENT, A.MULTIVARIATE_SPACE),
        # --- performance without labels, suspect labels (issue 17) ----------------------
        _m("ml.model.expected.confusion", OC, "{outcome}",
           "Expected confusion counts before labels arrive: for each prediction, its "
           "calibrated probability of each actual class (float counter; needs a reference "
           "fitted with labels).", A.SEGMENT, A.CLASS_PREDICTED, A.CLASS_ACTUAL),
        _m("ml.model.estimated.rows", OC, "{row}",
           "Predictions in the performance estimate (estimated MAE = absolute sum / rows).",
           A.SEGMENT),
        _m("ml.model.estimated.error.absolute", OC, "{error}",
           "Sum of the expected absolute errors of regression predictions (loss model).",
           A.SEGMENT),
        _m("ml.model.estimated.error.squared", OC, "{error}",
           "Sum of the expected squared errors of regression predictions (loss model).",
           A.SEGMENT),
        _m("ml.model.estimated.variance", OC, "{score}",
           "Sum over predictions of the variance of the per-row score (accuracy: c(1-c) of "
           "the probability c of being right; mae: of the absolute error): the estimate's "
           "sampling band.", A.SEGMENT, A.PERF_METRIC),
        _m("ml.model.estimation.excluded", OC, "{row}",
           "Prediction rows left out of the estimate (NaN, probabilities outside [0, 1] or "
           "not summing to 1, another number of classes), by reason.", A.REASON),
        _m("ml.outcome.suspect_labels", OC, "{outcome}",
           "Joined labels flagged as suspect: the calibrated confidence in another class "
           "exceeds that class's reference self-confidence (confident learning), by label.",
           A.CLASS_ACTUAL),
        # --- the library's own health --------------------------------------------------
        MetricSpec("ml.process.gpu.memory.usage", OG, "By",
                   "GPU memory this process holds per device (torch.cuda or NVML, when present).",
                   (A.GPU_DEVICE,)),
        MetricSpec("ml.telemetry.errors", OC, "{error}",
                   "Failures inside otel_ml itself (never raised to the caller), by cause.",
                   (A.REASON,)),
    )
}  # fmt: skip

#: Metrics dashboards use that come from other well-kept sources (not emitted by otel_ml).
#: Maps Prometheus series name to its origin.
EXTERNAL_METRICS: dict[str, str] = {
    "process_cpu_time_seconds_total": "opentelemetry-instrumentation-system-metrics (process.cpu.time)",
    "process_memory_usage_bytes": "opentelemetry-instrumentation-system-metrics (process.memory.usage)",
    "target_info": "OpenTelemetry resource (Collector prometheus exporter)",
    "up": "Prometheus scrape health",
}

_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}
_INVALID = re.compile(r"[^a-zA-Z0-9_:]")


def prometheus_label(key: str) -> str:
    """Prometheus label name for an attribute key (``ml.model.name`` → ``ml_model_name``)."""
    return _INVALID.sub("_", key)


def prometheus_name(name: str, unit: str, kind: Kind | str) -> str:
    """Prometheus base series name for an instrument, as the Collector produces it.

    Args:
        name: OpenTelemetry instrument name.
        unit: UCUM unit; curly-brace annotations add no suffix.
        kind: Instrument kind; counters get ``_total``.

    Returns:
        The series name (histograms add ``_bucket``/``_sum``/``_count`` to it).
    """
    base = _INVALID.sub("_", name)
    suffix = _UNIT_SUFFIX.get(unit) if not unit.startswith("{") else None
    if suffix and not base.endswith(f"_{suffix}"):
        base = f"{base}_{suffix}"
    if Kind(kind) in (Kind.COUNTER, Kind.OBSERVABLE_COUNTER):
        base = f"{base}_total"
    return base


def by_name(name: str) -> MetricSpec:
    """The spec of one instrument; raises ``KeyError`` naming the unknown metric."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the otel_ml metric contract") from None


# --------------------------------------------------------------------------- naming (issue 18)
#: Version of this metric contract (names, units, attributes, buckets): every meter and tracer
#: of otel_ml carries it as the scope attribute :data:`SCOPE_CONTRACT_VERSION`, so a consumer
#: can tell which names a series follows. A rename bumps it (see docs/metrics.md, "Naming").
CONTRACT_VERSION = "1"

#: Scope attribute holding :data:`CONTRACT_VERSION` (``otel_scope_otel_ml_contract_version``
#: in Prometheus through the Collector).
SCOPE_CONTRACT_VERSION = "otel_ml.contract.version"

#: Schema URL of every meter and tracer: the OpenTelemetry semantic conventions release the
#: standard attributes otel_ml records (``error.type``, ``service.*``) follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"

__all__ += ["CONTRACT_VERSION", "SCHEMA_URL", "SCOPE_CONTRACT_VERSION"]


# --- version comparison: shadow, champion/challenger, A/B split (issue 19) ---------------


class Role:
    """Values of ``ml.model.role``: which side of a comparison a call or a figure belongs to."""

    CHAMPION = "champion"  # the version whose result the caller gets (a split's first variant)
    CHALLENGER = "challenger"  # the version run in shadow, or another variant of a split
    ALL = (CHAMPION, CHALLENGER)


class Skip:
    """Values of ``ml.reason`` on ``ml.model.comparison.skipped`` (pairs not compared)."""

    QUEUE_FULL = "queue_full"  # the challenger's queue was full: dropped, never waited for
    CHALLENGER_ERROR = "challenger_error"  # the challenger raised
    TIMEOUT = "timeout"  # the challenger took longer than timeout_s (an async one is cancelled)
    SHAPE_MISMATCH = "shape_mismatch"  # another number of rows or columns than the champion's
    TYPE_MISMATCH = "type_mismatch"  # labels against numbers, or an unreadable result
    OVER_BUDGET = "over_budget"  # the challenger's CPU budget (shadow max_share) was spent
    ALL = (QUEUE_FULL, CHALLENGER_ERROR, TIMEOUT, SHAPE_MISMATCH, TYPE_MISMATCH, OVER_BUDGET)


class Assignment:
    """Values of ``ml.reason`` on ``ml.model.split.assignments``."""

    KEY = "key"  # assigned by hashing the caller's key
    KEY_ERROR = "key_error"  # the key callable raised (or gave None): the first variant
    ALL = (KEY, KEY_ERROR)


_PAIR = (Attr.CHALLENGER_VERSION,)

#: The comparison metrics: ``ml.model.version`` is the champion's (a split's first variant),
#: ``ml.model.challenger.version`` the version compared with it.
COMPARISON_METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        _m("ml.model.comparison.info", OG, "{pair}",
           "1 for each (champion, challenger) pair compared in this process, by mode "
           "(shadow or split).", *_PAIR, A.COMPARISON_MODE),
        _m("ml.model.comparison.pairs", OC, "{pair}",
           "Calls whose champion and challenger results were compared.", *_PAIR),
        _m("ml.model.comparison.rows", OC, "{row}",
           "Rows whose champion and challenger predictions were compared.", *_PAIR),
        _m("ml.model.comparison.disagreements", OC, "{row}",
           "Compared rows whose predicted class differs (classification).", *_PAIR),
        _m("ml.model.comparison.difference.absolute", OC, "{difference}",
           "Sum over compared rows of |challenger - champion| (regression outputs, scores).",
           *_PAIR),
        _m("ml.model.comparison.difference.squared", OC, "{difference}",
           "Sum over compared rows of (challenger - champion)^2.", *_PAIR),
        _m("ml.model.comparison.skipped", OC, "{pair}",
           "Pairs not compared, by reason (queue full, over the CPU budget, challenger error, "
           "timeout, mismatch).",
           *_PAIR, A.REASON),
        _m("ml.model.comparison.duration", OC, "s",
           "Seconds each side spent on the compared pairs (mean latency = this / pairs).",
           *_PAIR, A.MODEL_ROLE),
        _m("ml.model.split.assignments", OC, "{call}",
           "Calls a split routed to each variant (ml.model.version), by how it was chosen.",
           A.REASON),
    )
}  # fmt: skip
METRICS.update(COMPARISON_METRICS)
