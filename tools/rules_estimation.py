"""Recording rules and alerts of performance estimated without labels (issue 17), used by
``tools/gen_rules.py`` (kept apart so the estimation block is one file to read and merge).

Estimated accuracy and macro F1 come from the expected confusion counters exactly as the
realised ones come from ``ml_model_outcomes_total``; estimated MAE and RMSE from the expected
error sums over the estimated rows. The 95% band of an estimate over ``n`` rows is
``1.96 * sqrt(variance sum) / n`` (``ml_model_estimated_variance_total``).
"""

from __future__ import annotations

from collections.abc import Callable

from otel_ml import contract
from otel_ml.contract import Attr, prometheus_label
from otel_ml.thresholds import Thresholds

__all__ = ["GROUP", "alerts", "recording_rules"]

GROUP = "otel-ml.estimation"
Z = 1.96

M = "job, ml_model_name, ml_model_version"
MS = f"{M}, {prometheus_label(Attr.SEGMENT)}"
PRED, ACT = prometheus_label(Attr.CLASS_PREDICTED), prometheus_label(Attr.CLASS_ACTUAL)
METRIC = prometheus_label(Attr.PERF_METRIC)
CLASS = "ml_class"


def _m(name: str) -> str:
    return contract.by_name(name).prometheus


EXPECTED = _m("ml.model.expected.confusion")
ROWS = _m("ml.model.estimated.rows")
ABS = _m("ml.model.estimated.error.absolute")
SQ = _m("ml.model.estimated.error.squared")
VAR = _m("ml.model.estimated.variance")
REFERENCE = "model:" + _m("ml.model.performance.reference") + ":max"
OUTCOMES_1H = "model:" + _m("ml.model.outcomes").removesuffix("_total") + ":increase1h"
ERROR_COUNT_1H = "model:" + _m("ml.model.error.absolute") + "_count:increase1h"

E = EXPECTED.removesuffix("_total")
ACC, ACC_SEG = "model:ml_model_estimated_accuracy:ratio1h", "model_segment:ml_model_estimated_accuracy:ratio1h"
F1, F1_SEG = "model:ml_model_estimated_f1_macro:ratio1h", "model_segment:ml_model_estimated_f1_macro:ratio1h"
MAE, MAE_SEG = "model:ml_model_estimated_mae:1h", "model_segment:ml_model_estimated_mae:1h"
RMSE = "model:ml_model_estimated_rmse:1h"
N_EST = f"model:{ROWS.removesuffix('_total')}:increase1h"
VAR_ACC = "model:ml_model_estimated_accuracy:variance_per_row1h"
VAR_MAE = "model:ml_model_estimated_mae:variance_per_row1h"
UPPER = "model:ml_model_estimated_performance:upper1h"
LOWER = "model:ml_model_estimated_performance:lower1h"
PERF, PERF_SEG = "model:ml_model_estimated_performance:1h", "model_segment:ml_model_estimated_performance:1h"


def _relabel(expr: str, src: str) -> str:
    return f'sum by ({MS}, {CLASS}) (label_replace({expr}, "{CLASS}", "$1", "{src}", "(.*)"))'


def _named(pairs: tuple[tuple[str, str], ...]) -> str:
    return "\nor\n".join(f'label_replace({rec}, "{METRIC}", "{name}", "{METRIC}", "")'
                         for name, rec in pairs)


def recording_rules(w: Callable[[str], str]) -> list[tuple[str, str]]:
    """``(record, expr)`` pairs; ``w`` maps a nominal window (``"1h"``) to the one used."""
    x = f"model_segment_class:{E}:increase1h"
    correct = f"model_segment_class:{E}_correct:increase1h"
    seg, tot = f"model_segment:{E}:increase1h", f"model:{E}:increase1h"
    pairs = f"{MS}, {PRED}, {ACT}"
    pp, ap, tp = (f"model_segment_class:ml_model_estimated_{n}:increase1h"
                  for n in ("predicted", "actual", "true_positives"))
    f1c = "model_segment_class:ml_model_estimated_f1:ratio1h"
    var = f"sum by ({M}) (increase({VAR}{{{METRIC}=\"%s\"}}[{w('1h')}]))"
    return [
        (x, f"sum by ({pairs}) (increase({EXPECTED}[{w('1h')}]))"),
        (correct, f"{x}\nand on ({pairs})\n"
                  f'  label_replace(sum without ({PRED}) ({x}), "{PRED}", "$1", "{ACT}", "(.*)")'),
        (seg, f"sum by ({MS}) ({x})"),
        (tot, f"sum by ({M}) ({x})"),
        (ACC_SEG, f"(sum by ({MS}) ({correct}) or {seg} * 0)\n/ ({seg} > 0)"),
        (ACC, f"(sum by ({M}) ({correct}) or {tot} * 0)\n/ ({tot} > 0)"),
        (pp, _relabel(x, PRED)),
        (ap, _relabel(x, ACT)),
        (tp, f"{_relabel(correct, ACT)}\nor\n{ap} * 0"),
        # F1 = 2 TP / (predicted + actual), per segment and class, then macro.
        (f1c, f"2 * {tp}\n/ ((({pp} or {ap} * 0) + {ap}) > 0)"),
        (F1_SEG, f"avg without ({CLASS}) ({f1c})"),
        (F1, f"avg by ({M}) ({f1c})"),
        (N_EST, f"sum by ({M}) (increase({ROWS}[{w('1h')}]))"),
        (MAE_SEG, f"sum by ({MS}) (rate({ABS}[{w('1h')}]))\n"
                  f"/ (sum by ({MS}) (rate({ROWS}[{w('1h')}])) > 0)"),
        (MAE, f"sum by ({M}) (rate({ABS}[{w('1h')}]))\n/ (sum by ({M}) (rate({ROWS}[{w('1h')}])) > 0)"),
        (RMSE, f"sqrt(\n  sum by ({M}) (rate({SQ}[{w('1h')}]))\n"
               f"  / (sum by ({M}) (rate({ROWS}[{w('1h')}])) > 0)\n)"),
        # Per-row variance of the score: the band over n rows is 1.96 * sqrt(this / n).
        (VAR_ACC, f"{var % 'accuracy'}\n/ on ({M}) ({N_EST} > 0)"),
        (VAR_MAE, f"{var % 'mae'}\n/ on ({M}) ({N_EST} > 0)"),
        (UPPER, _named((("accuracy",
                         f"{ACC} + on ({M}) {Z} * sqrt({VAR_ACC} / on ({M}) ({N_EST} > 0))"),))),
        (LOWER, _named((("mae",
                         f"{MAE} - on ({M}) {Z} * sqrt({VAR_MAE} / on ({M}) ({N_EST} > 0))"),))),
        (PERF, _named((("accuracy", ACC), ("f1_macro", F1), ("mae", MAE), ("rmse", RMSE)))),
        (PERF_SEG, _named((("accuracy", ACC_SEG), ("f1_macro", F1_SEG), ("mae", MAE_SEG)))),
    ]


_MODEL_ID = "{{ $labels.ml_model_name }} {{ $labels.ml_model_version }} ({{ $labels.job }})"

def alerts(T: Thresholds) -> tuple[dict, ...]:  # noqa: N803 - the thresholds, as in gen_rules
    """Keyword arguments of ``gen_rules.AlertSpec`` (``expr`` takes the profile), with the
    thresholds ``T`` (``gen_rules``' own, so the mixin can mark them)."""
    return _alerts(T)


def _alerts(T: Thresholds) -> tuple[dict, ...]:  # noqa: N803
    return (
        dict(
            name="MLEstimatedPerformanceBelowReference", severity="warning", for_="15m",
            summary=("Estimated {{ $labels.ml_performance_metric }} of {{ $labels.ml_model_name }} "
                     "below its reference (before labels)"),
            description=("Even the optimistic end of the estimated "
                         "{{ $labels.ml_performance_metric }} of " + _MODEL_ID + " over the last "
                         "hour is past its validation value by {{ $value | printf \"%.3f\" }} "
                         "(accuracy: points below, threshold " + f"{T.performance_drop}" + "; MAE: "
                         "ratio, threshold " + f"{T.regression_error_factor}" + ")."),
            expr=lambda p: (
                f'{REFERENCE}{{{METRIC}="accuracy"}}\n- on ({M}, {METRIC}) {UPPER}\n'
                f"> {T.performance_drop}\nand on ({M}) {N_EST} >= {T.estimate_min_rows}\nor\n"
                f'{LOWER}\n/ on ({M}, {METRIC}) ({REFERENCE}{{{METRIC}="mae"}} > 0)\n'
                f"> {T.regression_error_factor}\nand on ({M}) {N_EST} >= {T.estimate_min_rows}"),
            threshold=(f"accuracy: the upper end of the estimate's 95% band over 1h more than "
                       f"{T.performance_drop} below the reference; MAE: the lower end above "
                       f"{T.regression_error_factor} x the reference; with at least "
                       f"{T.estimate_min_rows} predictions estimated in the hour, for 15m"),
            labels=(METRIC,),
            meaning=("Performance estimated from the model's calibrated confidence (classifiers) "
                     "or its loss model (regressors), before any label arrives, is worse than on "
                     "the validation data, beyond the estimate's sampling uncertainty. The "
                     "estimate assumes the calibration still holds (covariate shift, no concept "
                     "drift): see MLEstimateDiverges once labels arrive."),
            diagnosis=("*Estimated vs realised* row of *otel-ml / Performance and fairness*: which "
                       "segments' estimate dropped.",
                       "Drift alerts and the drift dashboard for the same period: the inputs that "
                       "moved into regions where the model is less sure."),
            mitigation=("Retrain on recent data (labels permitting) or roll back; get labels for "
                        "the affected segment first to confirm.",)),
        dict(
            name="MLEstimateDiverges", severity="warning", for_="30m",
            summary=("Realised {{ $labels.ml_performance_metric }} of {{ $labels.ml_model_name }} "
                     "outside its estimate's band"),
            description=("Realised {{ $labels.ml_performance_metric }} of " + _MODEL_ID + " over "
                         "the last hour differs from the label-free estimate by "
                         "{{ $value | printf \"%.3f\" }}, more than the estimate's 95% band for "
                         "the labelled rows plus " + f"{T.estimate_tolerance}" + " (accuracy; MAE: plus "
                         + f"{T.estimate_mae_tolerance}" + " of the estimate)."),
            expr=lambda p: (
                f'label_replace(abs(model:ml_model_accuracy:ratio1h - on ({M}) {ACC}), "{METRIC}", '
                f'"accuracy", "{METRIC}", "")\n'
                f"> on ({M}) group_left () ({Z} * sqrt({VAR_ACC} / on ({M}) ({OUTCOMES_1H} > 0)) + "
                f"{T.estimate_tolerance})\n"
                f"and on ({M}) {OUTCOMES_1H} >= {T.performance_min_outcomes}\nor\n"
                f'label_replace(abs(model:ml_model_mae:1h - on ({M}) {MAE}) / on ({M}) ({MAE} > 0), '
                f'"{METRIC}", "mae", "{METRIC}", "")\n'
                f"> on ({M}) group_left () ({Z} * sqrt({VAR_MAE} / on ({M}) ({ERROR_COUNT_1H} > 0))"
                f" / on ({M}) ({MAE} > 0) + {T.estimate_mae_tolerance})\n"
                f"and on ({M}) {ERROR_COUNT_1H} >= {T.performance_min_outcomes}"),
            threshold=(f"|realised - estimated| accuracy (or relative MAE) over 1h beyond the "
                       f"estimate's 95% band for the labelled rows plus {T.estimate_tolerance} "
                       f"(MAE: {T.estimate_mae_tolerance}), "
                       f"with at least {T.performance_min_outcomes} labelled predictions, for 30m"),
            labels=(METRIC,),
            meaning=("The calibration fitted on the validation data no longer describes how often "
                     "the model is right: the relationship between inputs and labels changed "
                     "(concept drift), or the labels are biased. Estimates before labels cannot be "
                     "trusted until the reference is refitted."),
            diagnosis=("*Estimated vs realised* row: since when the two lines part, in which "
                       "segments.",
                       "Concept-drift detections and suspect labels (`ml_outcome_suspect_labels_total`)"
                       " for the same period.",
                       "Late labels: the realised value covers only the labelled rows; a label "
                       "pipeline that labels one kind of row first biases it."),
            mitigation=("Refit the reference's calibration on recent labelled data "
                        "(`otel-ml profile --labels`), and retrain if performance dropped.",)),
    )
