#!/usr/bin/env python3
"""Prometheus recording and alert rules for otel-ml, as code (kubernetes-mixin style).

    python tools/gen_rules.py           # rewrite prometheus/rules/*.yml
    python tools/gen_rules.py --check   # exit 1 when the committed files are out of date

Label names come from :mod:`otel_ml.contract`; selectors, windows and thresholds are defined
once here (:data:`THRESHOLDS`, :class:`Profile`) and interpolated into every expression,
annotation and runbook (``tools/gen_docs.py`` renders ``docs/runbooks.md`` from :data:`ALERTS`).

Recording rules are named ``level:metric:operation``: the level lists the labels kept
(``model`` = ``job, ml_model_name, ml_model_version``; ``model_feature`` adds the feature, ...).
Alerts query the recorded names.

For end-to-end tests, :func:`render_files` writes the same rules with a faster
:class:`Profile` (short windows, short ``for:``): the recorded names do not change, only the
durations inside them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:  # runnable without installing the package
    sys.path.insert(0, str(REPO / "src"))

from otel_ml import contract  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _generated  # noqa: E402
import rules_estimation  # noqa: E402
from otel_ml.contract import Attr, prometheus_label  # noqa: E402
from otel_ml.thresholds import Thresholds  # noqa: E402

__all__ = [
    "ALERTS",
    "AlertSpec",
    "CHECK_MISSING",
    "CHECK_UNSEEN",
    "DEFAULT",
    "FAST",
    "Profile",
    "RULES_DIR",
    "RUNBOOK_BASE",
    "SEGMENT_ALERTS",
    "THRESHOLDS",
    "Thresholds",
    "VERSION_ALERTS",
    "version_rules",
    "alert_groups",
    "recording_groups",
    "recorded_names",
    "render",
    "render_files",
]

RULES_DIR = REPO / "prometheus" / "rules"
RUNBOOK_BASE = "https://github.com/otel-ml/otel-ml/blob/main/docs/runbooks.md"
#: Grafana as docker-compose serves it; segment alerts link to the drift dashboard's
#: "Where is it coming from" row with the alert's service, model, version and segment preset.
GRAFANA_BASE = "http://127.0.0.1:3000"
ROOT_CAUSE_DASHBOARD = "otel-ml-drift"
ROOT_CAUSE_ROW = "Where is it coming from"

# --------------------------------------------------------------------------- labels


def _m(name: str) -> str:
    """Prometheus series name of a contract metric (histograms: the base name)."""
    return contract.by_name(name).prometheus


JOB = "job"
MODEL_NAME = prometheus_label(Attr.MODEL_NAME)
MODEL_VERSION = prometheus_label(Attr.MODEL_VERSION)
FEATURE = prometheus_label(Attr.FEATURE)
BIN = prometheus_label(Attr.BIN)
SEGMENT = prometheus_label(Attr.SEGMENT)
CHECK = prometheus_label(Attr.CHECK)
CLASS_PREDICTED = prometheus_label(Attr.CLASS_PREDICTED)
CLASS_ACTUAL = prometheus_label(Attr.CLASS_ACTUAL)
PERF_METRIC = prometheus_label(Attr.PERF_METRIC)
FAIRNESS_ATTRIBUTE = prometheus_label(Attr.FAIRNESS_ATTRIBUTE)
FAIRNESS_METRIC = prometheus_label(Attr.FAIRNESS_METRIC)
DETECTOR = prometheus_label(Attr.DETECTOR)
REASON = prometheus_label(Attr.REASON)
ERROR_TYPE = prometheus_label(Attr.ERROR_TYPE)
#: Label introduced by the recording rules for per-class precision/recall/F1 (not an attribute).
CLASS = "ml_class"

MODEL = (JOB, MODEL_NAME, MODEL_VERSION)
MODEL_FEATURE = (*MODEL, FEATURE)
MODEL_FEATURE_BIN = (*MODEL_FEATURE, BIN)
MODEL_FEATURE_SEGMENT = (*MODEL_FEATURE, SEGMENT)
MODEL_FEATURE_SEGMENT_BIN = (*MODEL_FEATURE_SEGMENT, BIN)
MODEL_SEGMENT = (*MODEL, SEGMENT)

#: ``ml.quality.check`` values the alerts select (data-quality checks of the feature monitor).
CHECK_MISSING = contract.Check.MISSING
CHECK_UNSEEN = contract.Check.UNSEEN_CATEGORY

# Metric series names (from the contract, never spelled out by hand).
CALLS = _m("ml.model.predict.calls")
PREDICTIONS = _m("ml.model.predictions")
ERRORS = _m("ml.model.predict.errors")
DURATION = _m("ml.model.predict.duration")
BATCHES = _m("ml.model.batches")
#: Mean rows per successful call. The name predates ``ml.model.batches`` (it was the mean of a
#: batch-size histogram, failed calls included) and is kept so that saved queries still work.
MEAN_BATCH_SIZE = "model:ml_model_batch_size:mean5m"
INFO = _m("ml.model.info")
OBSERVATIONS = _m("ml.feature.observations")
REFERENCE_SHARE = _m("ml.reference.bin.share")
QUALITY = _m("ml.data_quality.issues")
OUTCOMES = _m("ml.model.outcomes")
ERROR_ABS = _m("ml.model.error.absolute")
ERROR_SQ = _m("ml.model.error.squared")
PERF_REFERENCE = _m("ml.model.performance.reference")
FAIRNESS_GAP = _m("ml.fairness.gap")
CONCEPT_DETECTIONS = _m("ml.concept_drift.detections")
CONCEPT_STATE = _m("ml.concept_drift.state")
REJECTED = _m("ml.model.requests.rejected")
STAGE_DURATION = _m("ml.pipeline.stage.duration")


def by(labels: tuple[str, ...]) -> str:
    return ", ".join(labels)


# --------------------------------------------------------------------------- thresholds


#: The shipped thresholds (``otel_ml.thresholds``): one definition for rules, docs and demo.
THRESHOLDS = Thresholds()

#: PSI/JS clamp for empty bins (ln(0) otherwise).
EPSILON = 1e-4


@dataclass(frozen=True)
class Profile:
    """Durations used in the rules. Recorded names keep their nominal windows (``rate5m``...).

    Attributes:
        windows: Nominal window → the range actually used in PromQL.
        for_: Nominal ``for:`` → the duration actually used (identity by default).
    """

    windows: dict[str, str] = field(default_factory=lambda: {
        "5m": "5m", "10m": "10m", "30m": "30m", "1h": "1h", "24h": "24h"})
    for_: dict[str, str] = field(default_factory=dict)

    def w(self, nominal: str) -> str:
        return self.windows[nominal]

    def f(self, nominal: str) -> str:
        return self.for_.get(nominal, nominal)


DEFAULT = Profile()
#: For end-to-end tests with 1s scrape/evaluation: alerts fire within seconds and resolve
#: within about half a minute after the cause stops.
FAST = Profile(
    windows={"5m": "20s", "10m": "30s", "30m": "1m", "1h": "2m", "24h": "5m"},
    for_={"0m": "0s", "5m": "5s", "10m": "5s", "15m": "5s", "30m": "5s"},
)


# --------------------------------------------------------------------------- recording rules


def _rec(record: str, expr: str) -> dict:
    return {"record": record, "expr": expr.strip()}


def _share_rules(level: str, labels: tuple[str, ...], window: str, p: Profile) -> list[dict]:
    """Observations per bin over ``window`` and each bin's share of the feature's total."""
    group = by(labels)
    total_labels = by(tuple(lbl for lbl in labels if lbl != BIN))
    total_level = level.replace("_bin", "")
    inc = f"{level}:{OBSERVATIONS.removesuffix('_total')}:increase{window}"
    total = f"{total_level}:{OBSERVATIONS.removesuffix('_total')}:increase{window}"
    share = f"{level}:{OBSERVATIONS.removesuffix('_total')}:share{window}"
    return [
        _rec(inc, f"sum by ({group}) (increase({OBSERVATIONS}[{p.w(window)}]))"),
        _rec(total, f"sum without ({BIN}) ({inc})"),
        _rec(share, f"{inc}\n/ on ({total_labels}) group_left ()\n  ({total} > 0)"),
    ]


REF_MAX = f"model_feature_bin:{REFERENCE_SHARE}:max"


def _drift_rules(window: str, p: Profile) -> list[dict]:
    """PSI and Jensen-Shannon distance per feature, fleet-wide, over ``window``."""
    obs = OBSERVATIONS.removesuffix("_total")
    share = f"model_feature_bin:{obs}:share{window}"
    total = f"model_feature:{obs}:increase{window}"
    psi_term = f"model_feature_bin:ml_feature_psi_term:{window}"
    js_term = f"model_feature_bin:ml_feature_js_term:{window}"
    p_fill = f"model_feature_bin:{obs}:share{window}_filled"
    q_fill = f"model_feature_bin:{REFERENCE_SHARE}:filled{window}"
    return [
        *_share_rules("model_feature_bin", MODEL_FEATURE_BIN, window, p),
        # Observed (p) and expected (q) share per bin, clamped away from 0. Both sides carry the
        # same labels; `or` adds the bins present on one side only, with share 0.
        _rec(p_fill, f"clamp_min({share} or {REF_MAX} * 0, {EPSILON})"),
        _rec(q_fill, f"clamp_min({REF_MAX} or {share} * 0, {EPSILON})"),
        _rec(psi_term, f"({p_fill} - {q_fill})\n* ln({p_fill} / {q_fill})"),
        _rec(f"model_feature:ml_feature_psi:{window}",
             f"sum without ({BIN}) ({psi_term})\nand on ({by(MODEL_FEATURE)}) ({total} > 0)"),
        _rec(js_term, f"0.5 * {p_fill} * ln(2 * {p_fill} / ({p_fill} + {q_fill}))\n"
                      f"+ 0.5 * {q_fill} * ln(2 * {q_fill} / ({p_fill} + {q_fill}))"),
        # Jensen-Shannon distance, base 2 (0 = same distribution, 1 = disjoint).
        _rec(f"model_feature:ml_feature_js:{window}",
             f"sqrt(clamp_min(sum without ({BIN}) ({js_term}), 0) / 0.6931471805599453)\n"
             f"and on ({by(MODEL_FEATURE)}) ({total} > 0)"),
    ]


def _segment_drift_rules(window: str, p: Profile) -> list[dict]:
    """PSI per feature and segment. Bins a segment never filled count as empty (share 0): their
    term is added from ``psi_term_empty`` (per feature) instead of a per-segment series."""
    obs = OBSERVATIONS.removesuffix("_total")
    share = f"model_feature_segment_bin:{obs}:share{window}"
    total = f"model_feature_segment:{obs}:increase{window}"
    q_fill = f"model_feature_bin:{REFERENCE_SHARE}:filled{window}"
    empty = f"model_feature_bin:ml_feature_psi_term_empty:{window}"
    join = f"on ({by(MODEL_FEATURE_BIN)}) group_left ()"
    pc = f"clamp_min({share}, {EPSILON})"
    return [
        *_share_rules("model_feature_segment_bin", MODEL_FEATURE_SEGMENT_BIN, window, p),
        # The PSI term of a bin with share 0: (eps - q) ln(eps / q).
        _rec(empty, f"({EPSILON} - {q_fill}) * ln({EPSILON} / {q_fill})"),
        _rec(f"model_feature_segment:ml_feature_psi:{window}",
             f"sum without ({BIN}) (\n  ({pc} - {join} {q_fill})\n"
             f"  * ln({pc} / {join} {q_fill})\n  - {join} {empty}\n)\n"
             f"+ on ({by(MODEL_FEATURE)}) group_left () sum without ({BIN}) ({empty})\n"
             f"and on ({by(MODEL_FEATURE_SEGMENT)}) ({total} > 0)"),
    ]


def _segment_share_rules(p: Profile) -> list[dict]:
    """Each segment's share of the traffic over 1h (rows: the most-observed feature's values)."""
    obs = OBSERVATIONS.removesuffix("_total")
    rows = f"model_segment:{obs}:increase1h"
    return [
        _rec(rows, f"max by ({by(MODEL_SEGMENT)}) (model_feature_segment:{obs}:increase1h)"),
        _rec(f"model_segment:{obs}:share1h",
             f"{rows}\n/ on ({by(MODEL)}) group_left ()\n  (sum by ({by(MODEL)}) ({rows}) > 0)"),
    ]


def _segment_quality_rules(p: Profile) -> list[dict]:
    """Missing share per feature and segment over 5m (counts, so a minimum can be required)."""
    ms = by(MODEL_FEATURE_SEGMENT)
    missing = f"model_feature_segment:ml_feature_missing:increase5m"
    obs = f"model_feature_segment:{OBSERVATIONS.removesuffix('_total')}:increase5m"
    return [
        _rec(missing, f'sum by ({ms}) (increase({QUALITY}{{{CHECK}="{CHECK_MISSING}"}}'
                      f"[{p.w('5m')}]))"),
        _rec(obs, f"sum by ({ms}) (increase({OBSERVATIONS}[{p.w('5m')}]))"),
        _rec("model_feature_segment:ml_feature_values:increase5m",
             f"{missing} + ({obs} or {missing} * 0)\nor\n{obs}"),
        _rec("model_feature_segment:ml_feature_missing:ratio5m",
             f"{missing}\n/ (model_feature_segment:ml_feature_values:increase5m > 0)"),
    ]


#: Loss against the reference, larger is worse: points lost for accuracy and macro F1, relative
#: increase for MAE and RMSE (0.2 = 20% above the validation value).
_LOSS = (f'{{higher}}{{{{{PERF_METRIC}=~"accuracy|f1_macro"}}}} * -1 + on ({{keys}}) group_left ()'
         f' model:{PERF_REFERENCE}:max\nor\n'
         f'({{higher}}{{{{{PERF_METRIC}=~"mae|rmse"}}}} - on ({{keys}}) group_left ()'
         f' model:{PERF_REFERENCE}:max)\n'
         f'/ on ({{keys}}) group_left () (model:{PERF_REFERENCE}:max > 0)')


def _segment_performance_rules(p: Profile) -> list[dict]:
    """Per-segment performance beside the reference, its loss, and each segment's contribution
    (labelled share x loss) to the fleet's loss."""
    m, ms = by(MODEL), by(MODEL_SEGMENT)
    outcomes = OUTCOMES.removesuffix("_total")
    keys = f"{m}, {PERF_METRIC}"
    count = f"model_segment:{ERROR_ABS}_count:increase1h"
    labelled = "model_segment:ml_model_labelled:increase1h"
    return [
        _rec(count, f"sum by ({ms}) (increase({ERROR_ABS}_count[{p.w('1h')}]))"),
        _rec(labelled, f"model_segment:{outcomes}:increase1h\nor\n{count}"),
        _rec("model_segment:ml_model_labelled:share1h",
             f"{labelled}\n/ on ({m}) group_left ()\n  (sum by ({m}) ({labelled}) > 0)"),
        _rec("model_segment:ml_model_performance:1h", "\nor\n".join(
            f'label_replace({rec}, "{PERF_METRIC}", "{name}", "{PERF_METRIC}", "")'
            for name, rec in (("accuracy", "model_segment:ml_model_accuracy:ratio1h"),
                              ("f1_macro", "model_segment:ml_model_f1_macro:ratio1h"),
                              ("mae", "model_segment:ml_model_mae:1h"),
                              ("rmse", "model_segment:ml_model_rmse:1h")))),
        _rec("model:ml_model_performance:loss1h",
             _LOSS.format(higher="model:ml_model_performance:1h", keys=keys)),
        _rec("model_segment:ml_model_performance:loss1h",
             _LOSS.format(higher="model_segment:ml_model_performance:1h", keys=keys)),
        _rec("model_segment:ml_model_performance:contribution1h",
             f"model_segment:ml_model_performance:loss1h\n"
             f"* on ({ms}) group_left () model_segment:ml_model_labelled:share1h"),
    ]


#: Segments ranked per model, and features ranked within the top segments.
TOP_SEGMENTS = 3
TOP_FEATURES = 5


def _root_cause_rules(p: Profile) -> list[dict]:
    """The ranking of the "Where is it coming from" row: segments by contribution to the
    prediction drift and to the performance loss, features of the top segments by PSI, and
    features by the spread of the error rate across their reference bins."""
    m, ms = by(MODEL), by(MODEL_SEGMENT)
    obs = OBSERVATIONS.removesuffix("_total")
    pred = contract.PREDICTION_FEATURE
    pred_psi = f'model_feature_segment:ml_feature_psi:1h{{{FEATURE}="{pred}"}}'
    drift_top = f"model_segment:ml_prediction_drift:contribution1h_top{TOP_SEGMENTS}"
    perf_top = f"model_segment:ml_model_performance:contribution1h_top{TOP_SEGMENTS}"
    by_bin = _m("ml.model.error_rate.by_bin")
    return [
        _rec("model_segment:ml_prediction_drift:contribution1h",
             f"model_segment:{obs}:share1h\n* on ({ms}) group_left ()\n"
             f"  max by ({ms}) ({pred_psi})"),
        _rec(drift_top, f"topk by ({m}) ({TOP_SEGMENTS}, "
                        "model_segment:ml_prediction_drift:contribution1h)"),
        _rec(perf_top, f"topk by ({m}, {PERF_METRIC}) ({TOP_SEGMENTS}, "
                       "model_segment:ml_model_performance:contribution1h)"),
        _rec(f"model_feature_segment:ml_feature_psi:top{TOP_FEATURES}_1h",
             f"topk by ({ms}) ({TOP_FEATURES},\n"
             f'  model_feature_segment:ml_feature_psi:1h{{{FEATURE}!="{pred}"}}\n'
             f"  and on ({ms}) ({drift_top} or on ({ms}) max by ({ms}) ({perf_top}))\n)"),
        _rec(f"model_feature:{by_bin}:spread",
             f"max by ({by(MODEL_FEATURE)}) ({by_bin})\n- min by ({by(MODEL_FEATURE)}) ({by_bin})"),
        _rec(f"model_feature:{by_bin}:spread_top{TOP_FEATURES}",
             f"topk by ({m}) ({TOP_FEATURES}, model_feature:{by_bin}:spread)"),
    ]


def _fill(expr: str, other: str) -> str:
    return f"{expr}\nor\n{other} * 0"


def recording_groups(p: Profile = DEFAULT) -> list[dict]:
    """Rule groups of recording rules (evaluated before the alert groups)."""
    m = by(MODEL)
    calls_rate = f"model:{CALLS.removesuffix('_total')}:rate5m"
    errors_rate = f"model:{ERRORS.removesuffix('_total')}:rate5m"
    ms = by(MODEL_SEGMENT)
    calls_seg = f"model_segment:{CALLS.removesuffix('_total')}:increase5m"
    errors_seg = f"model_segment:{ERRORS.removesuffix('_total')}:increase5m"
    calls = [
        _rec(calls_rate, f"sum by ({m}) (rate({CALLS}[{p.w('5m')}]))"),
        _rec(f"model:{PREDICTIONS.removesuffix('_total')}:rate5m",
             f"sum by ({m}) (rate({PREDICTIONS}[{p.w('5m')}]))"),
        _rec(errors_rate, f"sum by ({m}) (rate({ERRORS}[{p.w('5m')}]))"),
        _rec(f"model:{ERRORS.removesuffix('_total')}:ratio_rate5m",
             f"({errors_rate} or {calls_rate} * 0)\n/ ({calls_rate} > 0)"),
        # Per segment (the call's segment): counts, so a minimum of calls can be required.
        _rec(calls_seg, f"sum by ({ms}) (increase({CALLS}[{p.w('5m')}]))"),
        _rec(errors_seg, f"sum by ({ms}) (increase({ERRORS}[{p.w('5m')}]))"),
        _rec(f"model_segment:{ERRORS.removesuffix('_total')}:ratio5m",
             f"({errors_seg} or {calls_seg} * 0)\n/ ({calls_seg} > 0)"),
        *(_rec(f"model:{DURATION}:p{q}_5m",
               f"histogram_quantile({q / 100}, sum by ({m}, le) "
               f"(rate({DURATION}_bucket[{p.w('5m')}])))")
          for q in (50, 90, 99)),
        _rec(MEAN_BATCH_SIZE,
             f"sum by ({m}) (rate({PREDICTIONS}[{p.w('5m')}]))\n"
             f"/ (sum by ({m}) (rate({BATCHES}[{p.w('5m')}])) > 0)"),
        _rec(f"model_stage:{STAGE_DURATION}:p95_5m",
             f"histogram_quantile(0.95, sum by ({m}, {prometheus_label(Attr.STAGE)}, le) "
             f"(rate({STAGE_DURATION}_bucket[{p.w('5m')}])))"),
    ]
    rej = REJECTED.removesuffix("_total")
    rej_rate = f"model_reason:{rej}:rate5m"
    rejected = [
        _rec(rej_rate, f"sum by ({m}, {REASON}) (rate({REJECTED}[{p.w('5m')}]))"),
        # Refusals for one reason as a share of every request (refused or predicted).
        _rec(f"model_reason:{rej}:ratio_rate5m",
             f"{rej_rate}\n/ on ({m}) group_left () (\n"
             f"  sum by ({m}) ({rej_rate})\n"
             f"  + on ({m}) ({calls_rate} or sum by ({m}) ({rej_rate}) * 0)\n) > 0"),
    ]
    drift = [
        _rec(REF_MAX, f"max by ({by(MODEL_FEATURE_BIN)}) ({REFERENCE_SHARE})"),
        *_drift_rules("1h", p),
    ]
    drift_day = _drift_rules("24h", p)
    drift_segment = _segment_drift_rules("1h", p)

    qual_rate = f"model_feature_check:{QUALITY.removesuffix('_total')}:rate5m"
    obs_rate = f"model_feature:{OBSERVATIONS.removesuffix('_total')}:rate5m"
    missing = f'sum without ({CHECK}) ({qual_rate}{{{CHECK}="{CHECK_MISSING}"}})'
    unseen = f'sum without ({CHECK}) ({qual_rate}{{{CHECK}="{CHECK_UNSEEN}"}})'
    quality = [
        _rec(qual_rate, f"sum by ({by(MODEL_FEATURE)}, {CHECK}) (rate({QUALITY}[{p.w('5m')}]))"),
        _rec(obs_rate, f"sum by ({by(MODEL_FEATURE)}) (rate({OBSERVATIONS}[{p.w('5m')}]))"),
        # Missing values as a share of all values (missing + non-missing observations).
        _rec("model_feature:ml_feature_missing:ratio_rate5m",
             f"{missing}\n/ (\n  {missing}\n  + ({obs_rate} or {missing} * 0)\n)"),
        _rec("model_feature:ml_feature_unseen:ratio_rate5m",
             f"{unseen}\n/ ({obs_rate} > 0)"),
    ]

    outcomes = OUTCOMES.removesuffix("_total")
    x = f"model_segment_class:{outcomes}:increase1h"
    correct = f"model_segment_class:{outcomes}_correct:increase1h"
    seg = f"model_segment:{outcomes}:increase1h"
    tot = f"model:{outcomes}:increase1h"
    ms = by(MODEL_SEGMENT)
    msc = f"{ms}, {CLASS}"
    pairs = f"{ms}, {CLASS_PREDICTED}, {CLASS_ACTUAL}"

    def relabel(expr: str, src: str) -> str:
        return f'sum by ({msc}) (label_replace({expr}, "{CLASS}", "$1", "{src}", "(.*)"))'

    tp, pp, ap = (f"model_segment_class:ml_model_{n}:increase1h"
                  for n in ("true_positives", "predicted", "actual"))
    mtp, mpp, map_ = (f"model_class:ml_model_{n}:increase1h"
                      for n in ("true_positives", "predicted", "actual"))
    f1_seg = "model_segment_class:ml_model_f1:ratio1h"
    f1 = "model_class:ml_model_f1:ratio1h"
    mae_num = f"rate({ERROR_ABS}_sum[{p.w('1h')}])"
    cnt = f"rate({ERROR_ABS}_count[{p.w('1h')}])"
    sq = f"rate({ERROR_SQ}[{p.w('1h')}])"
    performance = [
        _rec(x, f"sum by ({pairs}) (increase({OUTCOMES}[{p.w('1h')}]))"),
        # The diagonal of the confusion matrix: PromQL cannot compare two labels, so keep the
        # pairs whose (predicted, actual) also exists with predicted copied from actual.
        _rec(correct,
             f"{x}\nand on ({pairs})\n"
             f'  label_replace(sum without ({CLASS_PREDICTED}) ({x}), '
             f'"{CLASS_PREDICTED}", "$1", "{CLASS_ACTUAL}", "(.*)")'),
        _rec(seg, f"sum by ({ms}) ({x})"),
        _rec(tot, f"sum by ({m}) ({x})"),
        _rec("model_segment:ml_model_accuracy:ratio1h",
             f"(sum by ({ms}) ({correct}) or {seg} * 0)\n/ ({seg} > 0)"),
        _rec("model:ml_model_accuracy:ratio1h",
             f"(sum by ({m}) ({correct}) or {tot} * 0)\n/ ({tot} > 0)"),
        # Per class (ml_class): true positives, predicted and actual counts, every class
        # present in all three (0 where absent).
        _rec(pp, _fill(relabel(x, CLASS_PREDICTED), relabel(x, CLASS_ACTUAL))),
        _rec(ap, _fill(relabel(x, CLASS_ACTUAL), relabel(x, CLASS_PREDICTED))),
        _rec(tp, _fill(relabel(correct, CLASS_ACTUAL), pp)),
        *(_rec(mr, f"sum without ({SEGMENT}) ({sr})")
          for mr, sr in ((mtp, tp), (mpp, pp), (map_, ap))),
        _rec("model_class:ml_model_precision:ratio1h", f"{mtp}\n/ ({mpp} > 0)"),
        _rec("model_class:ml_model_recall:ratio1h", f"{mtp}\n/ ({map_} > 0)"),
        # F1 = 2PR/(P+R) = 2TP / (predicted + actual).
        _rec(f1_seg, f"2 * {tp}\n/ (({pp} + {ap}) > 0)"),
        _rec(f1, f"2 * {mtp}\n/ (({mpp} + {map_}) > 0)"),
        _rec("model_segment:ml_model_f1_macro:ratio1h", f"avg without ({CLASS}) ({f1_seg})"),
        _rec("model:ml_model_f1_macro:ratio1h", f"avg without ({CLASS}) ({f1})"),
        # Regression.
        _rec("model_segment:ml_model_mae:1h",
             f"sum by ({ms}) ({mae_num})\n/ (sum by ({ms}) ({cnt}) > 0)"),
        _rec("model:ml_model_mae:1h", f"sum by ({m}) ({mae_num})\n/ (sum by ({m}) ({cnt}) > 0)"),
        _rec("model_segment:ml_model_rmse:1h",
             f"sqrt(\n  sum by ({ms}) ({sq})\n  / (sum by ({ms}) ({cnt}) > 0)\n)"),
        _rec("model:ml_model_rmse:1h",
             f"sqrt(\n  sum by ({m}) ({sq})\n  / (sum by ({m}) ({cnt}) > 0)\n)"),
        _rec(f"model:{ERROR_ABS}_count:increase1h",
             f"sum by ({m}) (increase({ERROR_ABS}_count[{p.w('1h')}]))"),
        # Every windowed metric side by side, labelled like ml_model_performance_reference.
        _rec("model:ml_model_performance:1h", "\nor\n".join(
            f'label_replace({rec}, "{PERF_METRIC}", "{name}", "{PERF_METRIC}", "")'
            for name, rec in (("accuracy", "model:ml_model_accuracy:ratio1h"),
                              ("f1_macro", "model:ml_model_f1_macro:ratio1h"),
                              ("mae", "model:ml_model_mae:1h"),
                              ("rmse", "model:ml_model_rmse:1h")))),
        _rec(f"model:{PERF_REFERENCE}:max", f"max by ({m}, {PERF_METRIC}) ({PERF_REFERENCE})"),
    ]
    fa = f"{m}, {FAIRNESS_ATTRIBUTE}, {FAIRNESS_METRIC}"
    fairness = [
        # The worst replica: largest difference, smallest disparate impact ratio.
        _rec(f"model_attribute:{FAIRNESS_GAP}:worst",
             f'max by ({fa}) ({FAIRNESS_GAP}{{{FAIRNESS_METRIC}!="disparate_impact_ratio"}})\n'
             f'or\nmin by ({fa}) ({FAIRNESS_GAP}{{{FAIRNESS_METRIC}="disparate_impact_ratio"}})'),
        _rec(f"model_detector:{CONCEPT_DETECTIONS.removesuffix('_total')}:increase30m",
             f"sum by ({m}, {DETECTOR}) (increase({CONCEPT_DETECTIONS}[{p.w('30m')}]))"),
    ]
    return [
        {"name": "otel-ml.calls", "rules": calls + rejected},
        {"name": "otel-ml.drift", "rules": drift},
        {"name": "otel-ml.drift-24h", "rules": drift_day},
        {"name": "otel-ml.drift-segment", "rules": drift_segment + _segment_share_rules(p)},
        {"name": "otel-ml.data-quality", "rules": quality + _segment_quality_rules(p)},
        {"name": "otel-ml.performance",
         "rules": performance + fairness + _segment_performance_rules(p)},
        {"name": "otel-ml.root-cause", "rules": _root_cause_rules(p)},
        {"name": "otel-ml.versions", "rules": version_rules(p)},
        {"name": rules_estimation.GROUP,
         "rules": [_rec(r, e) for r, e in rules_estimation.recording_rules(p.w)]},
    ]


def recorded_names(p: Profile = DEFAULT) -> list[str]:
    """Every recording rule name, in file order."""
    return [r["record"] for g in recording_groups(p) for r in g["rules"]]


# --------------------------------------------------------------------------- alerts


@dataclass(frozen=True)
class AlertSpec:
    """One alert and its runbook (rendered into ``docs/runbooks.md`` by ``tools/gen_docs.py``).

    ``expr`` and ``for_`` are callables of the :class:`Profile` so windows can be shortened.
    """

    name: str
    severity: str
    for_: str
    summary: str
    description: str
    expr: object  # Callable[[Profile], str]
    threshold: str
    meaning: str
    diagnosis: tuple[str, ...]
    mitigation: tuple[str, ...]
    labels: tuple[str, ...] = ()
    #: Fleet-wide alerts this per-segment alert explains: Alertmanager inhibits them while
    #: it fires (``alertmanager/alertmanager.yml``; ``tests/test_rules.py`` checks both agree).
    explains: tuple[str, ...] = ()
    #: Labels both alerts share for the inhibition (besides the model).
    explains_equal: tuple[str, ...] = ()

    @property
    def segmented(self) -> bool:
        """Whether the alert is per segment (has ``ml_segment`` and a dashboard link)."""
        return SEGMENT in self.labels

    @property
    def anchor(self) -> str:
        return self.name.lower()

    @property
    def runbook_url(self) -> str:
        return f"{RUNBOOK_BASE}#{self.anchor}"


T = THRESHOLDS
_PRED = contract.PREDICTION_FEATURE
_MODEL_ID = "{{ $labels.ml_model_name }} {{ $labels.ml_model_version }} ({{ $labels.job }})"
_FEATURE_ID = '"{{ $labels.ml_feature_name }}" of ' + _MODEL_ID
m_ = by(MODEL)
_PSI_1H = "model_feature:ml_feature_psi:1h"
_OBS_1H = f"model_feature:{OBSERVATIONS.removesuffix('_total')}:increase1h"


def _psi_expr(feature_match: str, threshold: float) -> object:
    return lambda p: (
        f"{_PSI_1H}{{{feature_match}}} > {threshold}\n"
        f"and on ({by(MODEL_FEATURE)}) {_OBS_1H} >= {T.drift_min_observations}")


_DRIFT_DIAGNOSIS = (
    "Open the *otel-ml / Drift and data quality* dashboard for the model; the *PSI by bin* panel "
    "shows which bins gained or lost mass.",
    "Check *PSI by segment*: drift concentrated in one segment usually means a new or changed "
    "data source (`model_feature_segment:ml_feature_psi:1h`).",
    "Compare with the 24h view (`model_feature:ml_feature_psi:24h`): a short spike is often a batch "
    "job or a test client; a sustained shift is a population change.",
    "Look at the data-quality panels: a surge of missing or out-of-range values often shows up as "
    "drift of the same feature.",
)
_DRIFT_MITIGATION = (
    "Upstream bug (unit change, broken join, new default value): fix the producer; drift resolves "
    "as the 1h window rolls over.",
    "Genuine population change: check the performance dashboard once labels arrive; retrain or "
    "recalibrate, then ship a new reference profile with the new model version.",
    "Expected and harmless (seasonality): raise the threshold in `src/otel_ml/thresholds.py` "
    "(`Thresholds`) and regenerate, or silence the feature in Alertmanager.",
)

# --------------------------------------------------------------------------- segment alerts

_SEG = "{{ $labels.ml_segment }}"
_MS = by(MODEL_SEGMENT)
_MFS = by(MODEL_FEATURE_SEGMENT)
_DIFFERS = (f"and is at least {T.segment_factor} times the fleet-wide value (the segment differs "
            "from the rest)")
_SEGMENT_MEANING = (
    " The segment differs from the rest: the same figure over all traffic is less than half "
    "as large, so the fleet-wide alert is diluted by the healthy segments or quiet. When every "
    "segment moves alike, or one segment carries all the traffic, the fleet-wide alert fires "
    "instead and this one does not. While this alert fires, Alertmanager inhibits the fleet-wide "
    "alert it explains, and groups every alert of the same model and segment into one "
    "notification.")
_SEGMENT_DIAGNOSIS = (
    "Follow the alert's `dashboard_url` annotation: the *" + ROOT_CAUSE_ROW + "* row of "
    "*otel-ml / Drift and data quality* with the segment preset ranks the segments by their "
    "contribution (share of traffic x change) and, within them, the features by PSI and by "
    "error-rate spread across their reference bins. In process, `monitor.root_cause_report()` "
    "gives the same ranking.",
    "Other alerts of the same segment arrive in the same notification: drifted features plus "
    "prediction drift plus a performance drop in one segment is the signature of a new or "
    "changed data source (a new site, a new client version, a unit change in one feed).",
    "Compare the segment's traffic share over time (*Traffic share by segment*): a segment that "
    "just appeared or grew is often the new source.",
)
_SEGMENT_MITIGATION = (
    "Fix the source of the segment (mapping, units, client); the alert resolves as its window "
    "rolls over.",
    "If the segment is a genuinely different population, decide whether the model should serve "
    "it: route it to a model trained on it, or retrain with it and ship a new reference profile.",
    "Known and accepted: silence the alert for that segment in Alertmanager "
    "(`ml_segment=\"...\"`).",
)
_PRED_SEG = f'model_feature_segment:ml_feature_psi:1h{{{FEATURE}="{_PRED}"}}'


def _segment_psi_expr(feature_match: str) -> object:
    obs = f"model_feature_segment:{OBSERVATIONS.removesuffix('_total')}:increase1h"
    return lambda p: (
        f"(\n  model_feature_segment:ml_feature_psi:1h{{{feature_match}}} > {T.segment_psi}\n"
        f"  and on ({_MFS}) {obs} >= {T.segment_min_rows}\n)\n"
        f"> on ({by(MODEL_FEATURE)}) group_left ()\n"
        f"  {T.segment_factor} * {_PSI_1H}")


def _segment_loss_expr(metrics: str, threshold: float) -> object:
    keys = f"{m_}, {PERF_METRIC}"
    return lambda p: (
        f'(\n  model_segment:ml_model_performance:loss1h{{{PERF_METRIC}=~"{metrics}"}}'
        f" > {threshold}\n"
        f"  and on ({_MS}) model_segment:ml_model_labelled:increase1h"
        f" >= {T.segment_min_outcomes}\n)\n"
        f"> on ({keys}) group_left ()\n"
        f"  {T.segment_factor} * model:ml_model_performance:loss1h")


SEGMENT_ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(
        name="MLSegmentFeatureDrift", severity="critical", for_="15m",
        summary=("Feature {{ $labels.ml_feature_name }} of {{ $labels.ml_model_name }} drifted "
                 "in segment " + _SEG),
        description=("PSI over the last hour of feature " + _FEATURE_ID + " in segment " + _SEG
                     + " is {{ $value | printf \"%.3f\" }} (threshold " + f"{T.segment_psi}"
                     + ", and at least " + f"{T.segment_factor}" + " times the fleet-wide PSI)."),
        expr=_segment_psi_expr(f'{FEATURE}!="{_PRED}"'),
        threshold=(f"PSI over 1h of the feature within the segment > {T.segment_psi} "
                   f"{_DIFFERS}, with at least {T.segment_min_rows} observations of the feature "
                   "in the segment in the hour, for 15m"),
        labels=(FEATURE, SEGMENT),
        meaning=("The distribution of one input feature within one segment (`segment_by`) "
                 "differs from the reference profile." + _SEGMENT_MEANING),
        diagnosis=_SEGMENT_DIAGNOSIS, mitigation=_SEGMENT_MITIGATION,
        explains=("MLFeatureDriftWarning", "MLFeatureDriftCritical"),
        explains_equal=(FEATURE,)),
    AlertSpec(
        name="MLSegmentPredictionDrift", severity="critical", for_="15m",
        summary="Predictions of {{ $labels.ml_model_name }} drifted in segment " + _SEG,
        description=("PSI over the last hour of the prediction distribution of " + _MODEL_ID
                     + " in segment " + _SEG + " is {{ $value | printf \"%.3f\" }} (threshold "
                     + f"{T.segment_psi}" + ", and at least " + f"{T.segment_factor}"
                     + " times the fleet-wide PSI)."),
        expr=_segment_psi_expr(f'{FEATURE}="{_PRED}"'),
        threshold=(f"PSI over 1h of feature `{_PRED}` within the segment > {T.segment_psi} "
                   f"{_DIFFERS}, with at least {T.segment_min_rows} predictions in the segment "
                   "in the hour, for 15m"),
        labels=(FEATURE, SEGMENT),
        meaning=("The model's outputs for one segment no longer follow the reference "
                 "distribution." + _SEGMENT_MEANING),
        diagnosis=_SEGMENT_DIAGNOSIS, mitigation=_SEGMENT_MITIGATION,
        explains=("MLPredictionDrift",), explains_equal=(FEATURE,)),
    AlertSpec(
        name="MLSegmentPerformanceBelowReference", severity="critical", for_="15m",
        summary=("{{ $labels.ml_performance_metric }} of {{ $labels.ml_model_name }} below its "
                 "reference in segment " + _SEG),
        description=("{{ $labels.ml_performance_metric }} of " + _MODEL_ID + " in segment "
                     + _SEG + " over the last hour is {{ $value | printf \"%.3f\" }} below its "
                     "validation value (threshold " + f"{T.performance_drop}" + ", and at least "
                     + f"{T.segment_factor}" + " times the fleet-wide drop)."),
        expr=_segment_loss_expr("accuracy|f1_macro", T.performance_drop),
        threshold=(f"accuracy or macro F1 over 1h within the segment more than "
                   f"{T.performance_drop} below the reference {_DIFFERS}, with at least "
                   f"{T.segment_min_outcomes} labelled predictions of the segment in the hour, "
                   "for 15m"),
        labels=(PERF_METRIC, SEGMENT),
        meaning=("Labelled predictions of one segment are less accurate than on the validation "
                 "data." + _SEGMENT_MEANING),
        diagnosis=_SEGMENT_DIAGNOSIS, mitigation=_SEGMENT_MITIGATION,
        explains=("MLModelPerformanceBelowReference",), explains_equal=(PERF_METRIC,)),
    AlertSpec(
        name="MLSegmentErrorAboveReference", severity="critical", for_="15m",
        summary=("{{ $labels.ml_performance_metric }} of {{ $labels.ml_model_name }} above its "
                 "reference in segment " + _SEG),
        description=("{{ $labels.ml_performance_metric }} of " + _MODEL_ID + " in segment "
                     + _SEG + " over the last hour is {{ $value | humanizePercentage }} above "
                     "its validation value (threshold "
                     + f"{T.regression_error_factor - 1:.0%}" + ", and at least "
                     + f"{T.segment_factor}" + " times the fleet-wide increase)."),
        expr=_segment_loss_expr("mae|rmse", round(T.regression_error_factor - 1, 6)),
        threshold=(f"MAE or RMSE over 1h within the segment above {T.regression_error_factor} x "
                   f"the reference {_DIFFERS}, with at least {T.segment_min_outcomes} labelled "
                   "predictions of the segment in the hour, for 15m"),
        labels=(PERF_METRIC, SEGMENT),
        meaning=("A regression model's errors within one segment grew beyond its validation "
                 "level." + _SEGMENT_MEANING),
        diagnosis=_SEGMENT_DIAGNOSIS, mitigation=_SEGMENT_MITIGATION,
        explains=("MLModelErrorAboveReference",), explains_equal=(PERF_METRIC,)),
    AlertSpec(
        name="MLSegmentErrorRatioHigh", severity="critical", for_="5m",
        summary="{{ $labels.ml_model_name }} predict calls are failing in segment " + _SEG,
        description=("{{ $value | humanizePercentage }} of predict calls of " + _MODEL_ID
                     + " in segment " + _SEG + " raised over the last 5 minutes (threshold "
                     + f"{T.error_ratio:.0%}" + ", and at least " + f"{T.segment_factor}"
                     + " times the fleet-wide ratio)."),
        expr=lambda p: (
            f"(\n  model_segment:{ERRORS.removesuffix('_total')}:ratio5m > {T.error_ratio}\n"
            f"  and on ({_MS}) model_segment:{CALLS.removesuffix('_total')}:increase5m"
            f" >= {T.segment_min_calls}\n)\n"
            f"> on ({m_}) group_left ()\n"
            f"  {T.segment_factor} * model:{ERRORS.removesuffix('_total')}:ratio_rate5m"),
        threshold=(f"error ratio over 5m within the segment > {T.error_ratio} {_DIFFERS}, with "
                   f"at least {T.segment_min_calls} calls of the segment in the 5 minutes, "
                   "for 5m"),
        labels=(SEGMENT,),
        meaning=("Predict calls of one segment raise exceptions: that segment's callers get "
                 "errors instead of predictions (a new client sending a payload the model "
                 "cannot read, an unknown category code, a missing column). The segment is the "
                 "call's segment (`segment_by` as a callable); with `segment_by` naming a "
                 "column, calls count under `__none__` and only the fleet-wide alert applies."
                 + _SEGMENT_MEANING),
        diagnosis=("The *Error ratio by segment* and *Errors by type* panels of *otel-ml / "
                   "Model overview*: since when, and which exception types; "
                   "`ml_model_predict_errors_total{ml_segment=\"...\"}` gives the types for "
                   "the segment alone.",
                   "Open an error span of the segment in Jaeger (search `error=true` for the "
                   "service): the exception event says what the segment's payloads lack.",
                   *_SEGMENT_DIAGNOSIS[1:]),
        mitigation=_SEGMENT_MITIGATION,
        explains=("MLModelErrorRatioHigh",)),
    AlertSpec(
        name="MLSegmentMissingValuesSurge", severity="critical", for_="15m",
        summary=("Missing values surge in {{ $labels.ml_feature_name }} in segment " + _SEG),
        description=("{{ $value | humanizePercentage }} of the values of feature " + _FEATURE_ID
                     + " in segment " + _SEG + " were missing over the last 5 minutes "
                     "(threshold " + f"{T.missing_ratio:.0%}" + ", and at least "
                     + f"{T.segment_factor}" + " times the fleet-wide share)."),
        expr=lambda p: (
            f"(\n  model_feature_segment:ml_feature_missing:ratio5m > {T.missing_ratio}\n"
            f"  and on ({_MFS}) model_feature_segment:ml_feature_values:increase5m"
            f" >= {T.segment_min_rows}\n)\n"
            f"> on ({by(MODEL_FEATURE)}) group_left ()\n"
            f"  {T.segment_factor} * model_feature:ml_feature_missing:ratio_rate5m"),
        threshold=(f"missing share over 5m within the segment > {T.missing_ratio} {_DIFFERS}, "
                   f"with at least {T.segment_min_rows} values of the feature in the segment in "
                   "the 5 minutes, for 15m"),
        labels=(FEATURE, SEGMENT),
        meaning=("One segment's callers send null/NaN (or omit the column) for a feature."
                 + _SEGMENT_MEANING),
        diagnosis=_SEGMENT_DIAGNOSIS, mitigation=_SEGMENT_MITIGATION,
        explains=("MLFeatureMissingValuesSurge",), explains_equal=(FEATURE,)),
)

# --- multivariate drift (issue 16): the joint distribution of the inputs --------------------
SPACE = prometheus_label(Attr.MULTIVARIATE_SPACE)
_MV_KEYS = (*MODEL, SEGMENT, SPACE)
_RECON = _m("ml.drift.reconstruction_error")
_RECON_UPPER = _m("ml.drift.reconstruction_error.upper")
_SEG_ONLY = f'{SEGMENT}!="{contract.ALL_SEGMENTS}"'
_ALL_ONLY = f'{SEGMENT}="{contract.ALL_SEGMENTS}"'


def _mv_above(selector: str) -> str:
    """Series of ``selector`` whose reconstruction error is above its upper bound."""
    return (f"max by ({by(_MV_KEYS)}) ({_RECON}{{{selector}}})\n"
            f"> on ({by(_MV_KEYS)})\n"
            f"max by ({by(_MV_KEYS)}) ({_RECON_UPPER}{{{selector}}})")

MULTIVARIATE_ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(
        name="MLMultivariateDrift", severity="warning", for_="15m",
        summary=("Joint distribution of the {{ $labels.ml_multivariate_space }} of "
                 "{{ $labels.ml_model_name }} drifted (segment {{ $labels.ml_segment }})"),
        description=("The mean PCA reconstruction error of the {{ $labels.ml_multivariate_space }}"
                     " of " + _MODEL_ID + " in segment {{ $labels.ml_segment }} is "
                     "{{ $value | printf \"%.3f\" }}, above the upper bound of reference windows "
                     "of the same size, over the drift window."),
        expr=lambda p: (
            f"{_mv_above(_SEG_ONLY)}\nor\n(\n{_mv_above(_ALL_ONLY)}\n"
            # All traffic only for a model without segments: with segments, the segment at
            # fault alerts (all traffic is its problem diluted).
            f"unless on ({by((*MODEL, SPACE))})\n"
            f"  max by ({by((*MODEL, SPACE))}) ({_RECON}{{{_SEG_ONLY}}})\n)"),
        threshold=(f"mean reconstruction error over the drift window above its reference upper "
                   f"bound (mean + 3 standard deviations of bootstrapped reference windows of "
                   f"the same size), with at least {T.multivariate_min_rows} rows in the window "
                   "(fewer are not exported), for 15m"),
        labels=(SPACE,),
        meaning=("How the inputs move together changed: rows are reconstructed worse by the "
                 "PCA fitted on the reference (NannyML's data-reconstruction method). It catches "
                 "a change in correlations that leaves every feature's own distribution the "
                 "same, and, for images and embeddings, a new source of inputs."),
        diagnosis=("*Multivariate drift* row of the model dashboard: which segment and space "
                   "(`features`: the numeric features; `embedding`: the embeddings' PCA).",
                   "Feature drift of the same segment: if univariate drift fires too, start "
                   "there; if not, look at pairs of features (correlations) or at the raw "
                   "inputs of the segment (a new scanner, a new client, a pipeline change).",
                   "`monitor.drift_report().multivariate` in the process gives value, bound "
                   "and rows per segment."),
        mitigation=("Fix the upstream change, or retrain with data of the new joint "
                    "distribution and rebuild the reference.",)),
)


ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(
        name="MLFeatureDriftWarning", severity="warning", for_="15m",
        summary="Feature {{ $labels.ml_feature_name }} of {{ $labels.ml_model_name }} is drifting",
        description=("PSI over the last hour of feature " + _FEATURE_ID + " is "
                     "{{ $value | printf \"%.3f\" }} (warning above " + f"{T.psi_warning}" + ")."),
        expr=_psi_expr(f'{FEATURE}!="{_PRED}"', T.psi_warning),
        threshold=(f"PSI over 1h > {T.psi_warning} for 15m, with at least "
                   f"{T.drift_min_observations} observations of the feature in the hour"),
        labels=(FEATURE,),
        meaning=("The distribution of one input feature over the last hour, pooled over every "
                 "replica, differs from the reference profile (training data) by a population "
                 "stability index above the warning level."),
        diagnosis=_DRIFT_DIAGNOSIS, mitigation=_DRIFT_MITIGATION),
    AlertSpec(
        name="MLFeatureDriftCritical", severity="critical", for_="15m",
        summary=("Feature {{ $labels.ml_feature_name }} of {{ $labels.ml_model_name }} "
                 "has drifted strongly"),
        description=("PSI over the last hour of feature " + _FEATURE_ID + " is "
                     "{{ $value | printf \"%.3f\" }} (critical above " + f"{T.psi_critical}" + ")."),
        expr=_psi_expr(f'{FEATURE}!="{_PRED}"', T.psi_critical),
        threshold=(f"PSI over 1h > {T.psi_critical} for 15m, with at least "
                   f"{T.drift_min_observations} observations of the feature in the hour"),
        labels=(FEATURE,),
        meaning=("Like the warning, but the shift is large: the model now sees inputs it was not "
                 "trained on. Alertmanager inhibits the warning for the same model and feature."),
        diagnosis=_DRIFT_DIAGNOSIS, mitigation=_DRIFT_MITIGATION),
    AlertSpec(
        name="MLPredictionDrift", severity="warning", for_="15m",
        summary="Predictions of {{ $labels.ml_model_name }} have drifted",
        description=("PSI over the last hour of the prediction distribution of " + _MODEL_ID
                     + " is {{ $value | printf \"%.3f\" }} (warning above "
                     + f"{T.psi_prediction}" + ")."),
        expr=_psi_expr(f'{FEATURE}="{_PRED}"', T.psi_prediction),
        threshold=(f"PSI over 1h of feature `{_PRED}` > {T.psi_prediction} for 15m, with at least "
                   f"{T.drift_min_observations} predictions in the hour"),
        labels=(FEATURE,),
        meaning=("The model's outputs (scores or classes) no longer follow the distribution they "
                 "had on the reference data. Without labels this is the earliest sign that the "
                 "model behaves differently, whatever the cause."),
        diagnosis=("Check which input features drift at the same time (feature drift alerts, "
                   "*Top drifting features*).",
                   "If no input drifts, look for a model or preprocessing change: compare "
                   "`ml_model_info` versions and recent deploys.",
                   "Check the performance dashboard once labels arrive."),
        mitigation=("Roll back a faulty deploy; otherwise treat as feature drift (retrain, new "
                    "reference profile).",)),
    AlertSpec(
        name="MLModelErrorRatioHigh", severity="critical", for_="5m",
        summary="{{ $labels.ml_model_name }} predict calls are failing",
        description=("{{ $value | humanizePercentage }} of predict calls of " + _MODEL_ID
                     + " raised over the last 5 minutes (threshold "
                     + f"{T.error_ratio:.0%}" + ")."),
        expr=lambda p: f"model:{ERRORS.removesuffix('_total')}:ratio_rate5m > {T.error_ratio}",
        threshold=f"error ratio over 5m > {T.error_ratio} for 5m",
        meaning=("Predict calls raise exceptions: callers get errors instead of predictions."),
        diagnosis=("The *Errors by type* panel of *otel-ml / Model overview* shows the exception "
                   "types (`error_type`).",
                   "Open an error span in Jaeger (search `error=true` for the service): the span "
                   "holds the exception event and the pipeline stage that raised.",
                   "Check data quality: schema mismatches (missing columns) often cause errors."),
        mitigation=("Roll back the model or the client that sends bad payloads; fix and redeploy.",)),
    AlertSpec(
        name="MLModelLatencyP99High", severity="warning", for_="10m",
        summary="{{ $labels.ml_model_name }} p99 latency above the SLO",
        description=("p99 predict latency of " + _MODEL_ID + " is {{ $value | humanizeDuration }}"
                     " over the last 5 minutes (SLO " + f"{T.latency_p99_seconds}s" + ")."),
        expr=lambda p: f"model:{DURATION}:p99_5m > {T.latency_p99_seconds}",
        threshold=f"p99 over 5m > {T.latency_p99_seconds}s for 10m",
        meaning="The slowest 1% of predict calls exceed the latency objective.",
        diagnosis=("*Predict latency* panel: use the exemplars (dots) to open slow traces in Jaeger and "
                   "see which pipeline stage takes the time.",
                   "Check *Mean batch size*: larger batches take longer.",
                   "Check *Process CPU* and *Process memory*: saturation or garbage collection."),
        mitigation=("Scale out, reduce batch sizes, or roll back a slower model version.",)),
    AlertSpec(
        name="MLFeatureMissingValuesSurge", severity="warning", for_="15m",
        summary="Missing values surge in {{ $labels.ml_feature_name }}",
        description=("{{ $value | humanizePercentage }} of the values of feature " + _FEATURE_ID
                     + " were missing over the last 5 minutes (threshold "
                     + f"{T.missing_ratio:.0%}" + ")."),
        expr=lambda p: f"model_feature:ml_feature_missing:ratio_rate5m > {T.missing_ratio}",
        threshold=f"missing share over 5m > {T.missing_ratio} for 15m",
        labels=(FEATURE,),
        meaning=("Callers send null/NaN (or omit the column) for a feature much more often than "
                 "acceptable. Models usually impute silently, so quality degrades without errors."),
        diagnosis=("*Quality issues* panels: which checks fire for the feature, since when, and in "
                   "which segment.",
                   "A missing column (schema mismatch) shows up for every row at once: look for a "
                   "client deploy."),
        mitigation=("Fix the producer of the feature; if missing values are now normal, retrain "
                    "with them and raise the threshold.",)),
    AlertSpec(
        name="MLFeatureUnseenCategoriesSurge", severity="warning", for_="15m",
        summary="Unseen categories surge in {{ $labels.ml_feature_name }}",
        description=("{{ $value | humanizePercentage }} of the values of categorical feature "
                     + _FEATURE_ID + " were categories absent from the reference over the last "
                     "5 minutes (threshold " + f"{T.unseen_ratio:.0%}" + ")."),
        expr=lambda p: f"model_feature:ml_feature_unseen:ratio_rate5m > {T.unseen_ratio}",
        threshold=f"unseen-category share over 5m > {T.unseen_ratio} for 15m",
        labels=(FEATURE,),
        meaning=("A categorical feature receives values the model never saw in training (new "
                 "product, new country, renamed code); they are encoded as unknown."),
        diagnosis=("Drift of the same feature usually fires too: the `__other__` bin grows.",
                   "Check the segment breakdown: a new data source often brings new codes."),
        mitigation=("Map the new values to known ones upstream, or retrain with them and ship a "
                    "new reference profile.",)),
    AlertSpec(
        name="MLModelPerformanceBelowReference", severity="warning", for_="15m",
        summary=("{{ $labels.ml_performance_metric }} of {{ $labels.ml_model_name }} "
                 "below its reference"),
        description=("{{ $labels.ml_performance_metric }} of " + _MODEL_ID + " over the last "
                     "hour is {{ $value | printf \"%.3f\" }} below its validation value "
                     "(threshold " + f"{T.performance_drop}" + ")."),
        expr=lambda p: (
            f'model:{PERF_REFERENCE}:max{{{PERF_METRIC}=~"accuracy|f1_macro"}}\n'
            f"- on ({m_}, {PERF_METRIC}) model:ml_model_performance:1h\n"
            f"> {T.performance_drop}\n"
            f"and on ({m_}) model:{OUTCOMES.removesuffix('_total')}:increase1h"
            f" >= {T.performance_min_outcomes}"),
        threshold=(f"accuracy or macro F1 over 1h more than {T.performance_drop} below the "
                   f"reference for 15m, with at least {T.performance_min_outcomes} labelled "
                   "predictions in the hour"),
        labels=(PERF_METRIC,),
        meaning=("Labelled predictions of the last hour are less accurate than on the validation "
                 "data stored with the reference profile."),
        diagnosis=("*otel-ml / Performance and fairness*: which segments lose accuracy, and "
                   "which classes (per-class F1).",
                   "Check drift alerts and the drift dashboard for the same period.",
                   "Late labels: the window only holds predictions whose labels arrived; a label "
                   "pipeline bug can bias it (check `ml_model_outcomes_unmatched_total`)."),
        mitigation=("Retrain on recent data or roll back to the previous version.",)),
    AlertSpec(
        name="MLModelErrorAboveReference", severity="warning", for_="15m",
        summary=("{{ $labels.ml_performance_metric }} of {{ $labels.ml_model_name }} "
                 "above its reference"),
        description=("{{ $labels.ml_performance_metric }} of " + _MODEL_ID + " over the last "
                     "hour is {{ $value | printf \"%.2f\" }} times its validation value "
                     "(threshold " + f"{T.regression_error_factor}" + ")."),
        expr=lambda p: (
            f'model:ml_model_performance:1h{{{PERF_METRIC}=~"mae|rmse"}}\n'
            f"/ on ({m_}, {PERF_METRIC}) (model:{PERF_REFERENCE}:max > 0)\n"
            f"> {T.regression_error_factor}\n"
            f"and on ({m_}) model:{ERROR_ABS}_count:increase1h >= {T.performance_min_outcomes}"),
        threshold=(f"MAE or RMSE over 1h above {T.regression_error_factor} x the reference for "
                   f"15m, with at least {T.performance_min_outcomes} labelled predictions"),
        labels=(PERF_METRIC,),
        meaning="A regression model's errors grew beyond its validation level.",
        diagnosis=("*MAE by segment* and *MAE and RMSE* panels; drift of the inputs over the same period.",),
        mitigation=("Retrain on recent data or roll back to the previous version.",)),
    AlertSpec(
        name="MLFairnessGap", severity="warning", for_="30m",
        summary=("Fairness gap on {{ $labels.ml_fairness_attribute }} for "
                 "{{ $labels.ml_model_name }}"),
        description=("{{ $labels.ml_fairness_metric }} across groups of "
                     "{{ $labels.ml_fairness_attribute }} for " + _MODEL_ID
                     + " is {{ $value | printf \"%.3f\" }} (limits: differences above "
                     + f"{T.fairness_difference}, disparate impact below "
                     + f"{T.fairness_impact_ratio}" + ")."),
        expr=lambda p: (
            f"model_attribute:{FAIRNESS_GAP}:worst"
            f'{{{FAIRNESS_METRIC}=~"demographic_parity_difference|equalized_odds_difference"}}'
            f" > {T.fairness_difference}\nor\n"
            f"model_attribute:{FAIRNESS_GAP}:worst"
            f'{{{FAIRNESS_METRIC}="disparate_impact_ratio"}} < {T.fairness_impact_ratio}'),
        threshold=(f"demographic parity or equalized odds difference > {T.fairness_difference}, "
                   f"or disparate impact ratio < {T.fairness_impact_ratio} (four-fifths rule), "
                   "for 30m"),
        labels=(FAIRNESS_ATTRIBUTE, FAIRNESS_METRIC),
        meaning=("Outcomes differ between groups of the sensitive attribute beyond the limits: "
                 "selection rates (demographic parity, disparate impact) or error rates "
                 "(equalized odds)."),
        diagnosis=("*Fairness gaps* and *Group rates* panels: per-group selection, true-positive and false-positive "
                   "rates (`ml_fairness_group_rate`). Groups with too few samples are not "
                   "reported.",
                   "Check whether one group drifted (drift by segment) or its labels changed."),
        mitigation=("Involve the model owner and the responsible-AI reviewer; consider "
                    "threshold adjustment per group or retraining with reweighting.",)),
    AlertSpec(
        name="MLConceptDriftDetected", severity="warning", for_="0m",
        summary="Concept drift detected for {{ $labels.ml_model_name }}",
        description=("Detector {{ $labels.ml_detector }} found a change in the prediction "
                     "errors of " + _MODEL_ID + " in the last 30 minutes."),
        expr=lambda p: (
            f"model_detector:{CONCEPT_DETECTIONS.removesuffix('_total')}:increase30m > 0\n"
            f"or\nmax by ({m_}, {DETECTOR}) ({CONCEPT_STATE}) > 0"),
        threshold=("any detection in 30m (`ml_concept_drift_detections_total` increased) or a "
                   "detector in the drift state; fires at once"),
        labels=(DETECTOR,),
        meaning=("The relationship between inputs and labels changed: the stream of per-"
                 "prediction errors shifted (Page-Hinkley, ADWIN or DDM). Inputs may look "
                 "unchanged."),
        diagnosis=("*Concept drift detections* panel and accuracy/MAE over time around the "
                   "detection.", "Compare segments: which one's accuracy moved."),
        mitigation=("Retrain on data after the change point.",)),
    AlertSpec(
        name="MLRejectedRequestsSpike", severity="warning", for_="10m",
        summary="{{ $labels.ml_model_name }} refuses many requests ({{ $labels.ml_reason }})",
        description=("{{ $value | humanizePercentage }} of requests to " + _MODEL_ID
                     + " were refused for reason {{ $labels.ml_reason }} over the last 5 "
                     "minutes (threshold " + f"{T.rejected_ratio:.0%}" + ")."),
        expr=lambda p: (
            f"model_reason:{REJECTED.removesuffix('_total')}:ratio_rate5m > {T.rejected_ratio}\n"
            f"and model_reason:{REJECTED.removesuffix('_total')}:rate5m"
            f" > {T.rejected_min_rate}"),
        threshold=(f"refusals for one reason > {T.rejected_ratio} of requests over 5m and more "
                   f"than {T.rejected_min_rate}/s, for 10m"),
        labels=(REASON,),
        meaning=("Many requests are refused before predict (authentication failures, rate "
                 "limits, invalid payloads): a misconfigured client, or abusive traffic."),
        diagnosis=("*Rejected requests* panel of *otel-ml / Model overview*: which reason, since when.",
                   "Authentication failures from one source suggest credential stuffing; "
                   "invalid payloads after a client deploy suggest a schema change."),
        mitigation=("Block or rate-limit the source, or fix the client.",)),
    AlertSpec(
        name="MLModelTelemetryAbsent", severity="warning", for_="5m",
        summary="No predictions from {{ $labels.ml_model_name }}",
        description=("Model {{ $labels.ml_model_name }} ({{ $labels.job }}) was live in the last "
                     "hour but has received no predict calls for 10 minutes."),
        expr=lambda p: (
            f"max by ({JOB}, {MODEL_NAME}) (max_over_time({INFO}[{p.w('1h')}]))\n"
            f"unless on ({JOB}, {MODEL_NAME})\n"
            f"sum by ({JOB}, {MODEL_NAME}) (increase({CALLS}[{p.w('10m')}])) > 0"),
        threshold=("`ml_model_info` seen in the last hour, and no increase of "
                   "`ml_model_predict_calls_total` (any version) over 10m, for 5m"),
        meaning=("A model that was serving stopped sending telemetry or stopped receiving "
                 "traffic: the process died, its OTLP exporter cannot reach the Collector, or "
                 "callers stopped calling it. A version rollout does not fire it as long as "
                 "some version of the model gets calls. It resolves by itself an hour after the "
                 "model was last seen."),
        diagnosis=("`up` and the Collector's own metrics (job `otel-collector-self`): is the "
                   "Collector scraped, does it refuse data?",
                   "The service's logs: exporter errors, crashes, restarts.",
                   "The callers: is traffic routed elsewhere?"),
        mitigation=("Restart the service or fix the exporter endpoint; if the model was retired "
                    "on purpose, silence the alert for an hour.",)),
    *SEGMENT_ALERTS,
    *MULTIVARIATE_ALERTS,
    *(AlertSpec(**spec) for spec in rules_estimation.alerts(T)),
)


#: Link of a segment alert: the root-cause row with the alert's model and segment preset.
DASHBOARD_URL = (
    f"{GRAFANA_BASE}/d/{ROOT_CAUSE_DASHBOARD}/?var-service={{{{ $labels.job | urlquery }}}}"
    "&var-model={{ $labels.ml_model_name | urlquery }}"
    "&var-version={{ $labels.ml_model_version | urlquery }}"
    "&var-segment={{ $labels.ml_segment | urlquery }}")


def alert_groups(p: Profile = DEFAULT) -> list[dict]:
    rules = []
    for a in ALERTS:
        annotations = {"summary": a.summary, "description": a.description,
                       "runbook_url": a.runbook_url}
        if a.segmented:
            annotations["dashboard_url"] = DASHBOARD_URL
        rule = {"alert": a.name, "expr": a.expr(p).strip(), "for": p.f(a.for_),
                "labels": {"severity": a.severity}, "annotations": annotations}
        rules.append(rule)
    return [{"name": "otel-ml.alerts", "rules": rules}]


# --------------------------------------------------------------------------- versions (issue 19)
# Shadow, champion/challenger and A/B split: the comparison counters per (champion, challenger)
# pair, the per-version performance joined onto each pair, the two-sided tests of the
# difference (the formulas of otel_ml._internal.stats.significance), and the distance between
# the two versions' prediction distributions. ``ml_model_version`` is the champion's (a split's
# first variant), ``ml_model_challenger_version`` the version compared with it. The joins
# assume each challenger version has one champion per model and service (a champion may have
# several challengers); the in-process report has no such limit.

CHALLENGER = prometheus_label(Attr.CHALLENGER_VERSION)
ROLE = prometheus_label(Attr.MODEL_ROLE)
MODEL_CHALLENGER = (*MODEL, CHALLENGER)
PAIR_INFO = "model_challenger:ml_model_comparison_info:group"
_MC = by(MODEL_CHALLENGER)
_CMP = {n: _m(f"ml.model.comparison.{n}") for n in (
    "info", "pairs", "rows", "disagreements", "difference.absolute", "difference.squared",
    "skipped", "duration")}
SPLIT_ASSIGNMENTS = _m("ml.model.split.assignments")


def _champion_side(stat: str) -> str:
    """A per-version series (labels ``MODEL``) of each pair's champion, on the pair's labels."""
    return f"{PAIR_INFO}\n* on ({m_}) group_left ()\n  ({stat})"


def _challenger_side(stat: str) -> str:
    """A per-version series of each pair's challenger, on the pair's labels: the version label
    moves to ``ml_model_challenger_version`` and the pair's champion version joins from the
    pair info."""
    return (f'sum without ({MODEL_VERSION}) (\n  label_replace({stat}, "{CHALLENGER}", "$1", '
            f'"{MODEL_VERSION}", "(.*)")\n)\n'
            f"* on ({JOB}, {MODEL_NAME}, {CHALLENGER}) group_left ({MODEL_VERSION})\n"
            f"  {PAIR_INFO}")


def _pair_min(a: str, b: str) -> str:
    return f"({a} <= {b})\nor\n{b}"


def version_rules(p: Profile = DEFAULT) -> list[dict]:
    """Recording rules comparing versions (group ``otel-ml.versions``)."""
    m, mc = by(MODEL), _MC
    outcomes = OUTCOMES.removesuffix("_total")
    tot = f"model:{outcomes}:increase1h"
    correct = f"model:{outcomes}_correct:increase1h"
    err_count = f"model:{ERROR_ABS}_count:increase1h"
    err_sum = f"model:{ERROR_ABS}_sum:increase1h"
    err_sq = f"model:{ERROR_SQ.removesuffix('_total')}:increase1h"
    rows = "model_challenger:ml_model_comparison_rows:increase1h"
    dis = "model_challenger:ml_model_comparison_disagreements:increase1h"
    calls_rate = f"model:{CALLS.removesuffix('_total')}:rate5m"
    assign_rate = f"model_reason:{SPLIT_ASSIGNMENTS.removesuffix('_total')}:rate5m"

    def inc(metric: str, window: str = "1h") -> str:
        return f"sum by ({mc}) (increase({metric}[{p.w(window)}]))"

    role = {r: f'sum by ({mc}) (rate({_CMP["duration"]}{{{ROLE}="{r}"}}[{p.w("5m")}]))'
            for r in contract.Role.ALL}
    n = {side: f"model_challenger:ml_model_outcomes_{side}:increase1h"
         for side in contract.Role.ALL}
    x = {side: f"model_challenger:ml_model_outcomes_correct_{side}:increase1h"
         for side in contract.Role.ALL}
    en = {side: f"model_challenger:ml_model_error_count_{side}:increase1h"
          for side in contract.Role.ALL}
    es = {side: f"model_challenger:ml_model_error_sum_{side}:increase1h"
          for side in contract.Role.ALL}
    eq = {side: f"model_challenger:ml_model_error_squared_{side}:increase1h"
          for side in contract.Role.ALL}
    a, b = contract.Role.CHAMPION, contract.Role.CHALLENGER
    pooled = f"(({x[a]} + {x[b]}) / ({n[a]} + {n[b]}))"
    accuracy_z = (f"({x[b]} / ({n[b]} > 0) - {x[a]} / ({n[a]} > 0))\n"
                  f"/ sqrt({pooled} * (1 - {pooled}) * (1 / {n[a]} + 1 / {n[b]}))")

    def mean(side: str) -> str:
        return f"({es[side]} / ({en[side]} > 1))"

    def var(side: str) -> str:  # unbiased variance of |e|: (mean(e^2) - mean(|e|)^2) n/(n-1)
        return (f"clamp_min({eq[side]} / ({en[side]} > 1) - {mean(side)} ^ 2, 0)"
                f" * {en[side]} / ({en[side]} - 1)")

    mae_z = (f"({mean(a)} - {mean(b)})\n"
             f"/ sqrt({var(a)} / {en[a]}\n  + {var(b)} / {en[b]})")
    share = ("model_challenger_bin:ml_prediction_share_challenger:1h")
    pred_filled = (f"model_feature_bin:{OBSERVATIONS.removesuffix('_total')}:share1h_filled"
                   f'{{{FEATURE}="{contract.PREDICTION_FEATURE}"}}')
    champ = f"on ({m}, {FEATURE}, {BIN}) group_left () {pred_filled}"
    return [
        # 1 per pair present (group: whatever the gauge value, and once across replicas).
        _rec(PAIR_INFO, f"group by ({mc}) ({_CMP['info']})"),
        # --- shadow: agreement and differences of the same inputs -------------------------
        _rec("model_challenger:ml_model_comparison_pairs:increase1h", inc(_CMP["pairs"])),
        _rec(rows, inc(_CMP["rows"])),
        _rec(dis, inc(_CMP["disagreements"])),
        _rec("model_challenger:ml_model_comparison_disagreement:ratio1h",
             f"({dis} or {rows} * 0)\n/ ({rows} > 0)"),
        _rec("model_challenger:ml_model_comparison_agreement:ratio1h",
             "1 - model_challenger:ml_model_comparison_disagreement:ratio1h"),
        _rec("model_challenger:ml_model_comparison_difference_absolute:mean1h",
             f"{inc(_CMP['difference.absolute'])}\n/ ({rows} > 0)"),
        _rec("model_challenger:ml_model_comparison_difference:rms1h",
             f"sqrt(\n  {inc(_CMP['difference.squared'])}\n  / ({rows} > 0)\n)"),
        _rec(f"model_challenger_reason:{_CMP['skipped'].removesuffix('_total')}:rate5m",
             f"sum by ({mc}, {REASON}) (rate({_CMP['skipped']}[{p.w('5m')}]))"),
        _rec("model_challenger:ml_model_comparison_latency:ratio5m",
             f"{role[b]}\n/ ({role[a]} > 0)"),
        # --- traffic share of each version (a split's variants, a rollout) ----------------
        _rec(f"model:{CALLS.removesuffix('_total')}:share5m",
             f"{calls_rate}\n/ on ({JOB}, {MODEL_NAME}) group_left ()\n"
             f"  (sum by ({JOB}, {MODEL_NAME}) ({calls_rate}) > 0)"),
        _rec(assign_rate, f"sum by ({m}, {REASON}) (rate({SPLIT_ASSIGNMENTS}[{p.w('5m')}]))"),
        # --- per-version labelled counts, joined onto each pair ---------------------------
        _rec(correct, f"sum by ({m}) (model_segment_class:{outcomes}_correct:increase1h)\n"
                      f"or\n{tot} * 0"),
        _rec(err_sum, f"sum by ({m}) (increase({ERROR_ABS}_sum[{p.w('1h')}]))"),
        _rec(err_sq, f"sum by ({m}) (increase({ERROR_SQ}[{p.w('1h')}]))"),
        *(_rec(n[s], side(tot)) for s, side in ((a, _champion_side), (b, _challenger_side))),
        *(_rec(x[s], side(correct)) for s, side in ((a, _champion_side), (b, _challenger_side))),
        *(_rec(en[s], side(err_count)) for s, side in ((a, _champion_side), (b, _challenger_side))),
        *(_rec(es[s], side(err_sum)) for s, side in ((a, _champion_side), (b, _challenger_side))),
        *(_rec(eq[s], side(err_sq)) for s, side in ((a, _champion_side), (b, _challenger_side))),
        # --- the two-sided tests: improvement statistic, positive = challenger better -----
        _rec("model_challenger:ml_model_accuracy:difference1h",
             f"{x[b]} / ({n[b]} > 0) - {x[a]} / ({n[a]} > 0)"),
        _rec("model_challenger:ml_model_mae:difference1h", f"{mean(b)} - {mean(a)}"),
        _rec("model_challenger:ml_model_improvement:z1h",
             f'label_replace(\n{accuracy_z}\n, "{PERF_METRIC}", "accuracy", "", "")\n'
             f'or\nlabel_replace(\n{mae_z}\n, "{PERF_METRIC}", "mae", "", "")'),
        _rec("model_challenger:ml_model_labelled:min1h",
             f'label_replace(\n{_pair_min(n[a], n[b])}\n, "{PERF_METRIC}", "accuracy", "", "")\n'
             f'or\nlabel_replace(\n{_pair_min(en[a], en[b])}\n, "{PERF_METRIC}", "mae", "", "")'),
        # --- distance between the two versions' prediction distributions -----------------
        _rec(share, _challenger_side(pred_filled)),
        _rec("model_challenger:ml_prediction_psi:1h",
             f"sum without ({FEATURE}, {BIN}) (\n  ({share} - {champ})\n"
             f"  * ln({share} / {champ})\n)"),
        _rec("model_challenger:ml_prediction_js:1h",
             f"sqrt(clamp_min(sum without ({FEATURE}, {BIN}) (\n"
             f"  0.5 * {share} * ln(2 * {share} / ({share} + {champ}))\n"
             f"  + 0.5 * ({share} * 0 + {champ}) * ln(2 * ({share} * 0 + {champ}) / ({share} + {champ}))\n"
             f"), 0) / 0.6931471805599453)"),
    ]


_PAIR_ID = ("{{ $labels.ml_model_name }} {{ $labels.ml_model_challenger_version }} against "
            "{{ $labels.ml_model_version }} ({{ $labels.job }})")
_VERSION_DIAGNOSIS = (
    "Open *otel-ml / Versions* for the model: traffic share, latency, error ratio, prediction "
    "distribution, agreement and performance of each version side by side.",
    "In process, `monitor.comparison_report()` (the champion's monitor) or "
    "`shadow.comparison_report()` / `split.comparison_report()` gives the same figures with the "
    "test's statistic, p-value and verdict.",
)


def _improvement_expr(op: str) -> object:
    z = THRESHOLDS.challenger_z
    bound = f"> {z}" if op == ">" else f"< -{z}"
    return lambda p: (
        f"model_challenger:ml_model_improvement:z1h {bound}\n"
        f"and on ({_MC}, {PERF_METRIC}) model_challenger:ml_model_labelled:min1h"
        f" >= {T.challenger_min_outcomes}")


_TEST = (f"two-sided test at alpha {T.challenger_alpha} (|z| > {T.challenger_z}: two-proportion "
         "z with the pooled proportion for accuracy, Welch for MAE) over 1h, with at least "
         f"{T.challenger_min_outcomes} labelled predictions of each version in the hour, for 15m")

VERSION_ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(
        name="MLChallengerDisagreementHigh", severity="warning", for_="15m",
        summary=("Challenger {{ $labels.ml_model_challenger_version }} of "
                 "{{ $labels.ml_model_name }} disagrees with the champion"),
        description=("{{ $value | humanizePercentage }} of the rows compared over the last hour "
                     "got another class from " + _PAIR_ID + " (threshold "
                     + f"{T.challenger_disagreement_ratio:.0%}" + ")."),
        expr=lambda p: (
            f"model_challenger:ml_model_comparison_disagreement:ratio1h"
            f" > {T.challenger_disagreement_ratio}\n"
            f"and on ({_MC}) model_challenger:ml_model_comparison_rows:increase1h"
            f" >= {T.challenger_min_rows}"),
        threshold=(f"disagreement share over 1h > {T.challenger_disagreement_ratio} with at "
                   f"least {T.challenger_min_rows} compared rows in the hour, for 15m"),
        labels=(CHALLENGER,),
        meaning=("A challenger running in shadow (`otel_ml.shadow`) predicts another class than "
                 "the champion on more rows than expected, on the same production inputs. Before "
                 "labels arrive this is the only sign of how differently it behaves; whether "
                 "the difference is an improvement needs labels (MLChallengerBetter / Worse)."),
        diagnosis=(*_VERSION_DIAGNOSIS,
                   "*Prediction distribution* and *Prediction PSI between versions*: does the "
                   "challenger predict one class more often (a threshold or calibration change) "
                   "or disagree evenly?",
                   "*Pairs skipped*: a challenger that errors or returns another shape is not "
                   "compared; check it is not disagreeing on a biased subset."),
        mitigation=("Expected for a retrained model: raise `challenger_disagreement_ratio` in "
                    "`src/otel_ml/thresholds.py` and regenerate, and wait for labels.",
                    "Unexpected: check the challenger's preprocessing and feature order "
                    "against the champion's before promoting it.")),
    AlertSpec(
        name="MLChallengerWorse", severity="warning", for_="15m",
        summary=("Challenger {{ $labels.ml_model_challenger_version }} of "
                 "{{ $labels.ml_model_name }} performs worse ({{ $labels.ml_performance_metric }})"),
        description=("{{ $labels.ml_performance_metric }} of " + _PAIR_ID + " over the last hour "
                     "is significantly worse: test statistic {{ $value | printf \"%.2f\" }} "
                     "(threshold -" + f"{T.challenger_z}" + ")."),
        expr=_improvement_expr("<"),
        threshold=f"improvement statistic < -{T.challenger_z}: {_TEST}",
        labels=(CHALLENGER, PERF_METRIC),
        meaning=("Once labels arrive, the challenger (shadow) or variant (split) is less "
                 "accurate (or has a larger MAE) than the champion, and the difference is "
                 "beyond what chance explains at the configured significance level."),
        diagnosis=(*_VERSION_DIAGNOSIS,
                   "*Accuracy by version* and *MAE by version*: how large the difference is; a "
                   "significant but small one may not matter.",
                   "A split: check both variants saw the same population (traffic share, "
                   "prediction distribution); a key that correlates with the label biases "
                   "the test."),
        mitigation=("Do not promote the challenger; for a split, move its weight back to the "
                    "champion.",)),
    AlertSpec(
        name="MLChallengerBetter", severity="warning", for_="15m",
        summary=("Challenger {{ $labels.ml_model_challenger_version }} of "
                 "{{ $labels.ml_model_name }} performs better ({{ $labels.ml_performance_metric }})"),
        description=("{{ $labels.ml_performance_metric }} of " + _PAIR_ID + " over the last hour "
                     "is significantly better: test statistic {{ $value | printf \"%.2f\" }} "
                     "(threshold " + f"{T.challenger_z}" + ")."),
        expr=_improvement_expr(">"),
        threshold=f"improvement statistic > {T.challenger_z}: {_TEST}",
        labels=(CHALLENGER, PERF_METRIC),
        meaning=("The challenger (shadow) or variant (split) is more accurate (or has a "
                 "smaller MAE) than the champion on the same hour of labelled traffic, beyond "
                 "chance at the configured significance level: a candidate for promotion."),
        diagnosis=(*_VERSION_DIAGNOSIS,
                   "Check latency and error ratio of the challenger on *otel-ml / Versions*: "
                   "better predictions at a higher cost may not be worth it."),
        mitigation=("Promote the challenger (make it the champion, or move the split's weight "
                    "to it) once the difference holds over a full business cycle.",)),
)

ALERTS = ALERTS + VERSION_ALERTS


# --------------------------------------------------------------------------- rendering


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

_HEADER = """\
# GENERATED by tools/gen_rules.py from src/otel_ml/contract.py: do not edit by hand.
# Regenerate with `python tools/gen_rules.py`; tests/test_generated.py fails when stale.
"""


def render(p: Profile = DEFAULT) -> dict[str, str]:
    """File name → YAML text of each rule file."""
    out = {}
    for fname, groups in (("otel-ml-recording.yml", recording_groups(p)),
                          ("otel-ml-alerts.yml", alert_groups(p))):
        out[fname] = _HEADER + yaml.dump({"groups": groups}, Dumper=_Dumper, sort_keys=False,
                                         width=1000, allow_unicode=True)
    return out


def render_files(out_dir: Path | str, p: Profile = FAST) -> list[Path]:
    """Write the rule files rendered with ``p`` into ``out_dir``; returns their paths.

    The end-to-end test passes these to Prometheus instead of ``prometheus/rules/*.yml`` so that
    alerts fire and resolve within seconds (same names, same expressions, shorter windows).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for fname, text in render(p).items():
        path = out / fname
        path.write_text(text)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    return _generated.main(__doc__, "gen_rules.py", RULES_DIR, render, argv)


if __name__ == "__main__":
    sys.exit(main())
