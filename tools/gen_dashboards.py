#!/usr/bin/env python3
"""Grafana dashboards for otel-ml, as code.

    python tools/gen_dashboards.py           # rewrite grafana/dashboards/*.json
    python tools/gen_dashboards.py --check   # exit 1 when the committed files are out of date

Four dashboards (model overview; drift and data quality; performance and fairness; pipeline)
share the template variables ``service`` (the ``job`` label: ``service.namespace/service.name``),
``model``, ``version`` and ``segment``. Queries use the series names of
:mod:`otel_ml.contract` and the recording rules of ``tools/gen_rules.py``; no query hard-codes
``job``. Every query is a plain PromQL expression once the variables are substituted (no
Grafana-only macros such as ``$__rate_interval``), so ``tests/dashboard_queries.py`` can run
each one against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from otel_ml import contract  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _generated  # noqa: E402
from tools import gen_rules as R  # noqa: E402

__all__ = ["DASHBOARDS", "DASHBOARDS_DIR", "PROMETHEUS", "JAEGER", "SCHEMA_VERSION", "render"]

DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
#: Datasource uids, as provisioned in grafana/provisioning/datasources/datasources.yml.
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
JAEGER = {"type": "jaeger", "uid": "jaeger"}
SCHEMA_VERSION = 39

ALL = contract.ALL_SEGMENTS
PRED = contract.PREDICTION_FEATURE

# Selectors (defined once).
SEL = 'job=~"$service", ml_model_name=~"$model", ml_model_version=~"$version"'
SEL_SEG = f'{SEL}, ml_segment=~"$segment"'
#: Per-segment series of windowed gauges, without the all-segments aggregate.
SEL_SEG_ONLY = f'{SEL_SEG}, ml_segment!="{ALL}"'
SEL_FEATURE = f'{SEL}, ml_feature_name=~"$feature"'


def _m(name: str) -> str:
    return contract.by_name(name).prometheus


def _variable(name: str, label: str, query: str, *, include_all: bool = True) -> dict:
    return {
        "name": name, "label": label, "type": "query", "datasource": PROMETHEUS,
        "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
        "refresh": 2, "sort": 1, "multi": True, "includeAll": include_all,
        "allValue": ".*" if include_all else None,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
        "options": [], "hide": 0,
    }


def variables(extra: tuple[dict, ...] = ()) -> list[dict]:
    """Template variables: each query uses only variables defined before it."""
    info = _m("ml.model.info")
    obs = _m("ml.feature.observations")
    return [
        _variable("service", "Service", f"label_values({info}, job)"),
        _variable("model", "Model", f'label_values({info}{{job=~"$service"}}, ml_model_name)'),
        _variable("version", "Version", f'label_values({info}{{job=~"$service", '
                                        f'ml_model_name=~"$model"}}, ml_model_version)'),
        _variable("segment", "Segment", f"label_values({obs}{{{SEL}}}, ml_segment)"),
        *extra,
    ]


FEATURE_VAR = _variable("feature", "Feature",
                        f'label_values({_m("ml.feature.observations")}{{{SEL}}}, ml_feature_name)')


class _Panels:
    """Lays panels out on the 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.x = self.y = self.row_h = 0

    def _place(self, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append({"id": len(self.panels) + 1, "type": "row", "title": title,
                            "collapsed": False, "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1},
                            "panels": []})
        self.y += 1

    def add(self, title: str, targets: list[tuple[str, str]], *, kind: str = "timeseries",
            unit: str = "short", description: str = "", w: int = 12, h: int = 8,
            exemplar: bool = False, instant: bool = False, links: list[dict] | None = None,
            options: dict | None = None, field_config: dict | None = None) -> None:
        panel = {
            "id": len(self.panels) + 1, "type": kind, "title": title, "description": description,
            "datasource": PROMETHEUS, "gridPos": self._place(w, h),
            "fieldConfig": {"defaults": {"unit": unit, **(field_config or {})}, "overrides": []},
            "options": options or {},
            "targets": [
                {"refId": chr(ord("A") + i), "datasource": PROMETHEUS, "expr": expr,
                 "legendFormat": legend, "exemplar": exemplar and "_bucket" in expr,
                 "instant": instant, "range": not instant,
                 **({"format": "table"} if kind == "table" else {})}
                for i, (expr, legend) in enumerate(targets)],
        }
        if kind == "table":  # one row per series, the targets' values side by side
            panel["transformations"] = [{"id": "merge", "options": {}}]
        if links:
            panel["links"] = links
        self.panels.append(panel)


def _dashboard(uid: str, title: str, description: str, panels: _Panels,
               extra_vars: tuple[dict, ...] = ()) -> dict:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["otel-ml"],
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": False,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s", "timezone": "",
        "graphTooltip": 1,
        "links": [{"title": "otel-ml", "type": "dashboards", "tags": ["otel-ml"], "asDropdown": True,
                   "includeVars": True, "keepTime": True}],
        "templating": {"list": variables(extra_vars)},
        "annotations": {"list": [{
            "name": "Alerts", "datasource": PROMETHEUS, "enable": True, "iconColor": "red",
            "expr": f'ALERTS{{alertstate="firing", {SEL}}}', "titleFormat": "{{alertname}}",
            "step": "60s"}]},
        "panels": panels.panels,
    }


LEGEND_MODEL = "{{ml_model_name}} {{ml_model_version}}"
RATE = "5m"


def overview() -> dict:
    p = _Panels()
    dur = _m("ml.model.predict.duration")
    p.row("Traffic")
    p.add("Predict calls /s", [(f"sum by (ml_model_name, ml_model_version) "
                                f"(model:ml_model_predict_calls:rate5m{{{SEL}}})", LEGEND_MODEL)],
          unit="reqps", w=8)
    p.add("Predictions (rows) /s", [(f"sum by (ml_model_name, ml_model_version) "
                                     f"(model:ml_model_predictions:rate5m{{{SEL}}})",
                                     LEGEND_MODEL)], unit="short", w=8)
    p.add("Live versions", [(f"count by (ml_model_name, ml_model_version, ml_model_task) "
                             f"({_m('ml.model.info')}{{{SEL}}})",
                             "{{ml_model_name}} {{ml_model_version}} ({{ml_model_task}})")],
          kind="table", instant=True, w=8,
          description="Replicas reporting each model version (ml_model_info).")
    p.row("Latency and errors")
    p.add("Predict latency", [
        (f"max by (ml_model_name, ml_model_version) (model:{dur}:p{q}_5m{{{SEL}}})",
         f"p{q} {LEGEND_MODEL}") for q in (50, 90, 99)] + [
        (f"histogram_quantile(0.99, sum by (le) (rate({dur}_bucket{{{SEL}}}[{RATE}])))",
         "p99 with exemplars")],
          unit="s", exemplar=True, w=12,
          description="Percentiles from the latency histogram; dots are exemplars: click one to "
                      "open its trace in Jaeger.",
          field_config={"custom": {"drawStyle": "line"}})
    p.add("Error ratio", [(f"max by (ml_model_name, ml_model_version) "
                           f"(model:ml_model_predict_errors:ratio_rate5m{{{SEL}}})", LEGEND_MODEL)],
          unit="percentunit", w=6,
          field_config={"thresholds": {"mode": "absolute", "steps": [
              {"color": "green", "value": None},
              {"color": "red", "value": R.THRESHOLDS.error_ratio}]}})
    p.add("Errors by type /s", [(f"sum by (error_type) (rate({_m('ml.model.predict.errors')}"
                                 f"{{{SEL}}}[{RATE}]))", "{{error_type}}")], unit="reqps", w=6)
    p.add("Error ratio by segment", [(f"max by (ml_segment) "
                                      f"(model_segment:ml_model_predict_errors:ratio5m{{{SEL}}})",
                                      "{{ml_segment}}")],
          unit="percentunit", w=24,
          description="Share of each segment's calls that raised over 5m (the call's segment: "
                      "__none__ when segment_by names a column). MLSegmentErrorRatioHigh "
                      "fires for a segment above the threshold and twice the fleet's ratio.",
          field_config={"thresholds": {"mode": "absolute", "steps": [
              {"color": "green", "value": None},
              {"color": "red", "value": R.THRESHOLDS.error_ratio}]}})
    p.row("Batches and resources")
    p.add("Mean batch size", [(f"max by (ml_model_name, ml_model_version) "
                               f"({R.MEAN_BATCH_SIZE}{{{SEL}}})",
                               LEGEND_MODEL)], unit="short", w=8,
          description="Rows per successful call (predictions / batches).")
    p.add("Calls by batch size /s", [(f"sum by (ml_batch_size_range) (rate("
                                      f"{_m('ml.model.batches')}{{{SEL}}}[{RATE}]))",
                                      "{{ml_batch_size_range}} rows")], unit="reqps", w=8,
          description="Successful calls per second by rows per call.")
    p.add("CPU inside predict (s/s)", [(f"sum by (instance) (rate("
                                        f"{_m('ml.model.predict.cpu.time')}{{{SEL}}}[{RATE}]))",
                                        "{{instance}}")], unit="percentunit", w=8)
    p.add("Process CPU (s/s)", [('sum by (instance) (rate(process_cpu_time_seconds_total'
                                 f'{{job=~"$service"}}[{RATE}]))', "{{instance}}")],
          unit="percentunit", w=12,
          description="Whole-process CPU from opentelemetry-instrumentation-system-metrics.")
    p.add("Process memory", [('sum by (instance) (process_memory_usage_bytes{job=~"$service"})',
                              "{{instance}}")], unit="bytes", w=12,
          description="Resident memory from opentelemetry-instrumentation-system-metrics.")
    p.add("Rejected requests /s", [(f"sum by (ml_reason) (model_reason:"
                                    f"ml_model_requests_rejected:rate5m{{{SEL}}})",
                                    "{{ml_reason}}")], unit="reqps", w=12)
    p.add("otel-ml internal errors /s", [(f"sum by (ml_reason) (rate("
                                          f"{_m('ml.telemetry.errors')}{{job=~\"$service\"}}"
                                          f"[{RATE}])) or vector(0)", "{{ml_reason}}")],
          unit="short", w=12,
          description="Failures inside otel_ml itself (never raised to the caller).")
    return _dashboard("otel-ml-overview", "otel-ml / Model overview",
                      "Traffic, latency, errors, batch size, live versions and resources.", p)


def _root_cause_row(p: _Panels) -> None:
    """The "Where is it coming from" row: the ranking of ``monitor.root_cause_report()`` from
    the root-cause recording rules. Segment alerts link here with ``var-segment`` preset; the
    segment rankings ignore the variable (they compare every segment), the feature ranking
    follows it."""
    q = R.THRESHOLDS
    seg_steps = {"thresholds": {"mode": "absolute", "steps": [
        {"color": "green", "value": None}, {"color": "red", "value": q.segment_psi}]}}
    p.row(R.ROOT_CAUSE_ROW)
    p.add("Segments by contribution to prediction drift (1h)", [
        (f"sort_desc(max by (ml_segment) (model_segment:ml_prediction_drift:contribution1h_top"
         f"{R.TOP_SEGMENTS}{{{SEL}}}))", "contribution"),
        (f"max by (ml_segment) (model_segment:ml_feature_observations:share1h{{{SEL}}})",
         "traffic share"),
        (f'max by (ml_segment) (model_feature_segment:ml_feature_psi:1h{{{SEL}, '
         f'ml_feature_name="{PRED}"}})', "prediction PSI")],
          kind="table", instant=True, w=12,
          options={"sortBy": [{"displayName": "Value #A", "desc": True}]},
          description=(f"Top {R.TOP_SEGMENTS} segments by share of traffic x PSI of the "
                       f"predictions within the segment. A segment alerts above PSI "
                       f"{q.segment_psi} when that is at least {q.segment_factor} x the "
                       "fleet-wide PSI."))
    p.add("Segments by contribution to the performance loss (1h)", [
        (f"sort_desc(max by (ml_segment, ml_performance_metric) (model_segment:ml_model_"
         f"performance:contribution1h_top{R.TOP_SEGMENTS}{{{SEL}}}))", "contribution"),
        (f"max by (ml_segment, ml_performance_metric) (model_segment:ml_model_performance:loss1h"
         f"{{{SEL}}})", "loss in the segment")],
          kind="table", instant=True, w=12,
          options={"sortBy": [{"displayName": "Value #A", "desc": True}]},
          description=("Top segments by labelled share x loss against the reference (points "
                       "of accuracy or macro F1 lost; relative increase of MAE or RMSE). A "
                       f"segment alerts above a loss of {q.performance_drop} (accuracy, F1) or "
                       f"{q.regression_error_factor - 1:.0%} (MAE, RMSE)."))
    p.add("Top drifting features of the top segments (PSI 1h)", [
        (f"sort_desc(max by (ml_segment, ml_feature_name) (model_feature_segment:ml_feature_"
         f"psi:top{R.TOP_FEATURES}_1h{{{SEL_SEG}}}))", "PSI")],
          kind="table", instant=True, w=8, field_config=seg_steps,
          description=(f"Within each top segment, the {R.TOP_FEATURES} features with the "
                       f"largest PSI (segment alert threshold {q.segment_psi})."))
    p.add("Features by error-rate spread across reference bins", [
        (f"sort_desc(max by (ml_feature_name) (model_feature:{_m('ml.model.error_rate.by_bin')}"
         f":spread_top{R.TOP_FEATURES}{{{SEL}}}))", "spread")],
          kind="table", instant=True, w=8,
          description=("Largest minus smallest error rate (MAE for a regressor) across the "
                       "reference bins of a feature, over labelled predictions: features whose "
                       "value ranges the model gets wrong."))
    p.add("Traffic share by segment (1h)", [
        (f"max by (ml_segment) (model_segment:ml_feature_observations:share1h{{{SEL}}})",
         "{{ml_segment}}")], unit="percentunit", w=8,
          description="A segment that just appeared or grew is often the new data source.")


def _multivariate_row(p: _Panels) -> None:
    """Multivariate drift (issue 16): reconstruction error and centroid distance against the
    reference bounds, per segment and space (features, embeddings)."""
    p.row("Multivariate drift (joint distribution, in-process)")
    legend = "{{ml_segment}} {{ml_multivariate_space}}"
    for title, metric, what in (
            ("Reconstruction error vs reference bound", "ml.drift.reconstruction_error",
             "Mean PCA reconstruction error of the window's rows; above its bound (dashed: "
             "bootstrapped reference windows of the same size) the way features move together "
             "changed, even when no single feature drifted."),
            ("Centroid distance vs reference bound", "ml.drift.centroid_distance",
             "Mean distance of the window's rows to the reference centroid (standardised "
             "features, or embeddings).")):
        p.add(title, [(f"max by (ml_segment, ml_multivariate_space) ({_m(metric)}{{{SEL_SEG}}})",
                       legend),
                      (f"max by (ml_segment, ml_multivariate_space) "
                       f"({_m(metric + '.upper')}{{{SEL_SEG}}})", "bound " + legend)],
              w=12, description=what)


def drift() -> dict:
    p = _Panels()
    q = R.THRESHOLDS
    psi_steps = {"thresholds": {"mode": "absolute", "steps": [
        {"color": "green", "value": None}, {"color": "orange", "value": q.psi_warning},
        {"color": "red", "value": q.psi_critical}]}}
    _root_cause_row(p)
    p.row("Drift (fleet-wide, from the exported bin counts)")
    p.add("PSI per feature (1h)", [(f'max by (ml_feature_name) (model_feature:ml_feature_psi:1h'
                                    f'{{{SEL_FEATURE}, ml_feature_name!="{PRED}"}})',
                                    "{{ml_feature_name}}")],
          w=12, field_config=psi_steps,
          description=f"Population stability index; warning above {q.psi_warning}, critical "
                      f"above {q.psi_critical}.")
    p.add("Top drifting features (PSI 1h / 24h, JS 1h)", [
        (f'topk(10, max by (ml_feature_name) (model_feature:ml_feature_psi:1h{{{SEL}, '
         f'ml_feature_name!="{PRED}"}}))', "psi 1h"),
        (f'max by (ml_feature_name) (model_feature:ml_feature_psi:24h{{{SEL}, '
         f'ml_feature_name!="{PRED}"}})', "psi 24h"),
        (f'max by (ml_feature_name) (model_feature:ml_feature_js:1h{{{SEL}, '
         f'ml_feature_name!="{PRED}"}})', "js 1h")],
          kind="table", instant=True, w=12, field_config=psi_steps,
          options={"sortBy": [{"displayName": "Value #A", "desc": True}]})
    p.add("PSI by segment (1h)", [(f"max by (ml_feature_name, ml_segment) "
                                   f"(model_feature_segment:ml_feature_psi:1h{{{SEL_FEATURE}, "
                                   f'ml_segment=~"$segment"}})',
                                   "{{ml_feature_name}} / {{ml_segment}}")],
          w=12, field_config=psi_steps,
          description="Drift concentrated in one segment points at its data source.")
    p.add("PSI by bin (1h)", [(f"sum by (ml_feature_name, ml_feature_bin) "
                               f"(model_feature_bin:ml_feature_psi_term:1h{{{SEL_FEATURE}}})",
                               "{{ml_feature_name}} bin {{ml_feature_bin}}")],
          kind="bargauge", instant=True, w=12,
          description="Each bin's share of the PSI: which value ranges gained or lost mass.")
    p.add("In-process drift score (all segments)", [
        (f'max by (ml_feature_name, ml_drift_method) ({_m("ml.feature.drift.score")}'
         f'{{{SEL_FEATURE}, ml_segment="{ALL}"}})', "{{ml_feature_name}} {{ml_drift_method}}")],
          w=12, description="Computed by each replica over its own drift window.")
    p.add("Drifted features (in-process decision)", [
        (f'sum by (ml_feature_name) ({_m("ml.feature.drifted")}{{{SEL_FEATURE}, '
         f'ml_segment="{ALL}"}})', "{{ml_feature_name}}")], kind="stat", instant=True, w=12)
    p.row("Prediction distribution")
    p.add("Predictions vs reference (share per bin, 1h)", [
        (f'sum by (ml_feature_bin) (model_feature_bin:ml_feature_observations:share1h'
         f'{{{SEL}, ml_feature_name="{PRED}"}})', "observed {{ml_feature_bin}}"),
        (f'max by (ml_feature_bin) (model_feature_bin:{_m("ml.reference.bin.share")}:max'
         f'{{{SEL}, ml_feature_name="{PRED}"}})', "reference {{ml_feature_bin}}")],
          kind="bargauge", instant=True, w=12)
    p.add("Prediction PSI (1h)", [(f'max by (ml_model_name, ml_model_version) '
                                   f'(model_feature:ml_feature_psi:1h{{{SEL}, '
                                   f'ml_feature_name="{PRED}"}})', LEGEND_MODEL)],
          w=12, field_config=psi_steps)
    _multivariate_row(p)
    p.row("Data quality")
    p.add("Quality issues /s by check", [(f"sum by (ml_feature_name, ml_quality_check) "
                                          f"(model_feature_check:ml_data_quality_issues:rate5m"
                                          f"{{{SEL_FEATURE}}})",
                                          "{{ml_feature_name}} {{ml_quality_check}}")],
          w=12, description="Missing, non-finite, out-of-range, unseen categories, type and "
                            "schema mismatches.")
    p.add("Missing share", [(f"max by (ml_feature_name) "
                             f"(model_feature:ml_feature_missing:ratio_rate5m{{{SEL_FEATURE}}})",
                             "{{ml_feature_name}}")], unit="percentunit", w=6)
    p.add("Unseen-category share", [(f"max by (ml_feature_name) "
                                     f"(model_feature:ml_feature_unseen:ratio_rate5m"
                                     f"{{{SEL_FEATURE}}})", "{{ml_feature_name}}")],
          unit="percentunit", w=6)
    p.add("Quality issues by segment /s", [(f"sum by (ml_segment, ml_quality_check) (rate("
                                            f"{_m('ml.data_quality.issues')}{{{SEL_SEG}}}"
                                            f"[{RATE}]))",
                                            "{{ml_segment}} {{ml_quality_check}}")], w=12)
    p.add("Outlier rows /s", [(f"sum by (ml_segment) (rate({_m('ml.model.outliers')}"
                               f"{{{SEL_SEG}}}[{RATE}]))", "{{ml_segment}}")], w=12)
    return _dashboard("otel-ml-drift", "otel-ml / Drift and data quality",
                      "Drift per feature and segment against the reference profile, the "
                      "prediction distribution, and data quality.", p, (FEATURE_VAR,))


def performance() -> dict:
    p = _Panels()
    p.row("Classification (from the confusion counters)")
    p.add("Accuracy and macro F1 (1h)", [
        (f"max by (ml_model_name, ml_model_version) (model:ml_model_accuracy:ratio1h{{{SEL}}})",
         f"accuracy {LEGEND_MODEL}"),
        (f"max by (ml_model_name, ml_model_version) (model:ml_model_f1_macro:ratio1h{{{SEL}}})",
         f"macro F1 {LEGEND_MODEL}"),
        (f'max by (ml_model_name, ml_model_version, ml_performance_metric) '
         f'(model:{_m("ml.model.performance.reference")}:max{{{SEL}, '
         f'ml_performance_metric=~"accuracy|f1_macro"}})',
         "reference {{ml_performance_metric}}")],
          unit="percentunit", w=12)
    p.add("Accuracy by segment (1h)", [(f"max by (ml_segment) "
                                        f"(model_segment:ml_model_accuracy:ratio1h{{{SEL_SEG}}})",
                                        "{{ml_segment}}")], unit="percentunit", w=12)
    p.add("F1 per class (1h)", [(f"max by (ml_class) (model_class:ml_model_f1:ratio1h{{{SEL}}})",
                                 "{{ml_class}}")], unit="percentunit", w=8)
    p.add("Precision and recall per class (1h)", [
        (f"max by (ml_class) (model_class:ml_model_precision:ratio1h{{{SEL}}})",
         "precision {{ml_class}}"),
        (f"max by (ml_class) (model_class:ml_model_recall:ratio1h{{{SEL}}})",
         "recall {{ml_class}}")], unit="percentunit", w=8)
    p.add("Macro F1 by segment (1h)", [(f"max by (ml_segment) "
                                        f"(model_segment:ml_model_f1_macro:ratio1h{{{SEL_SEG}}})",
                                        "{{ml_segment}}")], unit="percentunit", w=8)
    p.add("Windowed performance (in-process, per segment)", [
        (f'max by (ml_segment, ml_performance_metric) ({_m("ml.model.performance")}'
         f'{{{SEL_SEG}}})', "{{ml_performance_metric}} {{ml_segment}}")], w=12)
    p.add("Labelled predictions /h", [(f"sum by (ml_segment) "
                                       f"(model_segment:ml_model_outcomes:increase1h{{{SEL_SEG}}})",
                                       "{{ml_segment}}"),
                                      (f"sum by (ml_reason) (increase("
                                       f"{_m('ml.model.outcomes.unmatched')}{{{SEL}}}[1h]))",
                                       "unmatched {{ml_reason}}")], w=12)
    p.row("Regression")
    p.add("MAE and RMSE (1h)", [
        (f"max by (ml_model_name, ml_model_version) (model:ml_model_mae:1h{{{SEL}}})",
         f"MAE {LEGEND_MODEL}"),
        (f"max by (ml_model_name, ml_model_version) (model:ml_model_rmse:1h{{{SEL}}})",
         f"RMSE {LEGEND_MODEL}")], w=12)
    p.add("MAE by segment (1h)", [(f"max by (ml_segment) (model_segment:ml_model_mae:1h"
                                   f"{{{SEL_SEG}}})", "{{ml_segment}}")], w=12)
    _estimation_row(p)
    p.row("Fairness and concept drift")
    p.add("Fairness gaps (worst replica)", [
        (f"max by (ml_fairness_attribute, ml_fairness_metric) "
         f"(model_attribute:{_m('ml.fairness.gap')}:worst{{{SEL}}})",
         "{{ml_fairness_attribute}} {{ml_fairness_metric}}")], w=12,
          description=f"Limits: differences above {R.THRESHOLDS.fairness_difference}, disparate "
                      f"impact below {R.THRESHOLDS.fairness_impact_ratio}.")
    p.add("Group rates", [(f"max by (ml_fairness_attribute, ml_fairness_group, ml_fairness_metric)"
                           f" ({_m('ml.fairness.group.rate')}{{{SEL}}})",
                           "{{ml_fairness_group}} {{ml_fairness_metric}}")],
          kind="table", instant=True, w=12)
    p.add("Concept drift detections (30m)", [
        (f"sum by (ml_detector) (model_detector:ml_concept_drift_detections:increase30m{{{SEL}}})",
         "{{ml_detector}}"),
        (f"max by (ml_detector) ({_m('ml.concept_drift.state')}{{{SEL}}})",
         "in drift: {{ml_detector}}")], w=12)
    p.add("Error rate by reference bin", [
        (f"topk(10, max by (ml_feature_name, ml_feature_bin) ("
         f"{_m('ml.model.error_rate.by_bin')}{{{SEL}}}))",
         "{{ml_feature_name}} bin {{ml_feature_bin}}")], kind="table", instant=True, w=12,
          description="Which feature ranges the model gets wrong most.")
    return _dashboard("otel-ml-performance", "otel-ml / Performance and fairness",
                      "Accuracy, F1, MAE/RMSE over time and per segment, fairness gaps and "
                      "concept drift, from labels joined to predictions.", p)


def _estimation_row(p: _Panels) -> None:
    """Issue 17: performance estimated before labels beside the realised one, per segment."""
    p.row("Estimated vs realised")
    p.add("Estimated vs realised ($segment, 1h)", [
        (f"max by (ml_performance_metric) (model_segment:ml_model_estimated_performance:1h"
         f"{{{SEL_SEG}}})", "estimated {{ml_performance_metric}}"),
        (f'max by (ml_performance_metric) (model_segment:ml_model_performance:1h{{{SEL_SEG}, '
         f'ml_performance_metric=~"accuracy|f1_macro|mae"}})',
         "realised {{ml_performance_metric}}")], w=12,
          description="One panel per segment: accuracy and macro F1 (classifiers) or MAE "
                      "(regressors) estimated from calibrated confidence or the loss model as "
                      "predictions arrive, and realised once labels are joined. Lines that part "
                      "mean the calibration no longer holds (MLEstimateDiverges).")
    p.panels[-1]["repeat"] = "segment"
    p.panels[-1]["repeatDirection"] = "h"
    p.add("Estimated accuracy band and reference (1h)", [
        (f"max by (ml_model_name, ml_model_version) (model:ml_model_estimated_accuracy:ratio1h"
         f"{{{SEL}}})", f"estimated {LEGEND_MODEL}"),
        (f"max by (ml_model_name, ml_model_version) (model:ml_model_estimated_performance:upper1h"
         f"{{{SEL}}})", f"upper 95% {LEGEND_MODEL}"),
        (f'max by (ml_model_name, ml_model_version) (model:{_m("ml.model.performance.reference")}'
         f':max{{{SEL}, ml_performance_metric="accuracy"}})', f"reference {LEGEND_MODEL}"),
        (f"sum by (ml_reason) (increase({_m('ml.model.estimation.excluded')}{{{SEL}}}[1h]))",
         "left out: {{ml_reason}}")], w=12)


def pipeline() -> dict:
    p = _Panels()
    stage = _m("ml.pipeline.stage.duration")
    jaeger_link = [{"title": "Traces of this service in Jaeger", "targetBlank": True,
                    "url": "/explore?left=" + json.dumps(
                        {"datasource": "jaeger", "queries": [{"refId": "A",
                                                              "queryType": "search",
                                                              "service": "${service}"}]},
                        separators=(",", ":"))}]
    p.row("Stages")
    p.add("Stage duration p95", [(f"max by (ml_stage_name) (model_stage:{stage}:p95_5m{{{SEL}}})",
                                  "{{ml_stage_name}}")], unit="s", w=12, links=jaeger_link)
    p.add("Stage duration p99 (exemplars link to traces)", [
        (f"histogram_quantile(0.99, sum by (ml_stage_name, le) (rate({stage}_bucket{{{SEL}}}"
         f"[{RATE}])))", "{{ml_stage_name}}")], unit="s", w=12, exemplar=True, links=jaeger_link,
          description="Click an exemplar to open the trace with its nested stages in Jaeger.")
    p.add("Rows in / out per stage /s", [(f"sum by (ml_stage_name, ml_stage_direction) (rate("
                                          f"{_m('ml.pipeline.stage.rows')}{{{SEL}}}[{RATE}]))",
                                          "{{ml_stage_name}} {{ml_stage_direction}}")], w=12)
    p.add("Stage errors /s", [(f"sum by (ml_stage_name, error_type) (rate("
                               f"{_m('ml.pipeline.stage.errors')}{{{SEL}}}[{RATE}]))",
                               "{{ml_stage_name}} {{error_type}}")], w=12)
    p.add("Stage calls /s", [(f"sum by (ml_stage_name) (rate({stage}_count{{{SEL}}}[{RATE}]))",
                              "{{ml_stage_name}}")], unit="reqps", w=12)
    p.add("Rows dropped per stage (out / in, 5m)", [
        (f'sum by (ml_stage_name) (rate({_m("ml.pipeline.stage.rows")}{{{SEL}, '
         f'ml_stage_direction="out"}}[{RATE}]))\n/ sum by (ml_stage_name) (rate('
         f'{_m("ml.pipeline.stage.rows")}{{{SEL}, ml_stage_direction="in"}}[{RATE}]))',
         "{{ml_stage_name}}")], unit="percentunit", w=12)
    return _dashboard("otel-ml-pipeline", "otel-ml / Pipeline",
                      "Traced pipeline stages: durations, rows in and out, errors, and links to "
                      "the traces in Jaeger.", p)


DASHBOARDS = {"otel-ml-overview.json": overview, "otel-ml-drift.json": drift,
              "otel-ml-performance.json": performance, "otel-ml-pipeline.json": pipeline}


# --------------------------------------------------------------------------- versions (issue 19)

LEGEND_VERSION = "{{ml_model_version}}"
LEGEND_PAIR = "{{ml_model_challenger_version}} vs {{ml_model_version}}"


def versions() -> dict:
    """Versions of a model side by side: shadow (champion/challenger) and A/B split."""
    p = _Panels()
    t = R.THRESHOLDS
    mv = "ml_model_name, ml_model_version"
    pair = "ml_model_name, ml_model_version, ml_model_challenger_version"
    p.row("Traffic and cost")
    p.add("Traffic share by version (5m)", [
        (f"max by ({mv}) (model:ml_model_predict_calls:share5m{{{SEL}}})", LEGEND_VERSION)],
          unit="percentunit", w=8,
          description="Each version's share of the model's predict calls (a split's variants; "
                      "a shadow challenger counts its own calls too).")
    p.add("Split assignments /s", [
        (f"sum by (ml_model_version, ml_reason) "
         f"(model_reason:{R.SPLIT_ASSIGNMENTS.removesuffix('_total')}:rate5m{{{SEL}}})",
         "{{ml_model_version}} {{ml_reason}}")], unit="reqps", w=8,
          description="Calls an A/B split routed to each variant; key_error: the key callable "
                      "raised and the call went to the first variant.")
    p.add("Latency p50 and p99 by version", [
        (f"max by ({mv}) (model:{R.DURATION}:p{q}_5m{{{SEL}}})", f"p{q} {LEGEND_VERSION}")
        for q in (50, 99)], unit="s", w=8)
    p.add("Error ratio by version", [
        (f"max by ({mv}) (model:ml_model_predict_errors:ratio_rate5m{{{SEL}}})",
         LEGEND_VERSION)], unit="percentunit", w=8,
          field_config={"thresholds": {"mode": "absolute", "steps": [
              {"color": "green", "value": None}, {"color": "red", "value": t.error_ratio}]}})
    p.add("Challenger / champion latency (5m)", [
        (f"max by ({pair}) (model_challenger:ml_model_comparison_latency:ratio5m{{{SEL}}})",
         LEGEND_PAIR)], unit="x", w=8,
          description="Seconds the challenger spends per compared pair over the champion's "
                      "(its work runs off the caller's path).")
    p.add("Pairs skipped /s by reason", [
        (f"sum by (ml_model_challenger_version, ml_reason) "
         f"(model_challenger_reason:ml_model_comparison_skipped:rate5m{{{SEL}}})",
         "{{ml_model_challenger_version}} {{ml_reason}}")], w=8,
          description="Shadow pairs not compared: queue full (dropped, never waited for), "
                      "challenger errors, timeouts, another shape or type of result.")
    p.row("Agreement (shadow)")
    p.add("Agreement rate (1h)", [
        (f"max by ({pair}) (model_challenger:ml_model_comparison_agreement:ratio1h{{{SEL}}})",
         LEGEND_PAIR)], unit="percentunit", w=8,
          description="Share of compared rows where the challenger predicts the champion's "
                      "class. MLChallengerDisagreementHigh fires below "
                      f"{1 - t.challenger_disagreement_ratio:.0%}.",
          field_config={"thresholds": {"mode": "absolute", "steps": [
              {"color": "red", "value": None},
              {"color": "green", "value": round(1 - t.challenger_disagreement_ratio, 6)}]}})
    p.add("Mean |difference| (1h)", [
        (f"max by ({pair}) "
         f"(model_challenger:ml_model_comparison_difference_absolute:mean1h{{{SEL}}})",
         LEGEND_PAIR)], w=8,
          description="Mean absolute difference of the outputs (regression values, scores).")
    p.add("Prediction PSI between versions (1h)", [
        (f"max by ({pair}) (model_challenger:ml_prediction_psi:1h{{{SEL}}})", f"PSI {LEGEND_PAIR}"),
        (f"max by ({pair}) (model_challenger:ml_prediction_js:1h{{{SEL}}})", f"JS {LEGEND_PAIR}")],
          w=8, description="Distance between the two versions' prediction distributions, on "
                           "the reference profile's prediction bins.")
    p.add("Prediction distribution by version (1h)", [
        (f"max by ({mv}, ml_feature_bin) (model_feature_bin:ml_feature_observations:share1h"
         f'{{{SEL}, ml_feature_name="{PRED}"}})', "{{ml_model_version}} bin {{ml_feature_bin}}")],
          kind="table", instant=True, unit="percentunit", w=24)
    p.row("Performance (labels)")
    p.add("Accuracy by version (1h)", [
        (f"max by ({mv}) (model:ml_model_accuracy:ratio1h{{{SEL}}})", LEGEND_VERSION)],
          unit="percentunit", w=8)
    p.add("MAE by version (1h)", [
        (f"max by ({mv}) (model:ml_model_mae:1h{{{SEL}}})", LEGEND_VERSION)], w=8)
    p.add("Validation performance by version", [
        (f"max by ({mv}, ml_performance_metric) (model:{R.PERF_REFERENCE}:max{{{SEL}}})",
         "{{ml_model_version}} {{ml_performance_metric}}")], w=8,
          description="Performance on validation data stored with each version's reference.")
    p.add("Improvement statistic (1h)", [
        (f"max by ({pair}, ml_performance_metric) "
         f"(model_challenger:ml_model_improvement:z1h{{{SEL}}})",
         f"{LEGEND_PAIR} {{{{ml_performance_metric}}}}")], w=8,
          description="Two-sided test of the challenger against the champion: positive is "
                      f"better. MLChallengerBetter fires above {t.challenger_z}, "
                      f"MLChallengerWorse below -{t.challenger_z}, with at least "
                      f"{t.challenger_min_outcomes} labelled rows of each version.",
          field_config={"thresholds": {"mode": "absolute", "steps": [
              {"color": "red", "value": None}, {"color": "yellow", "value": -t.challenger_z},
              {"color": "green", "value": t.challenger_z}]}})
    p.add("Accuracy difference, challenger - champion (1h)", [
        (f"max by ({pair}) (model_challenger:ml_model_accuracy:difference1h{{{SEL}}})",
         LEGEND_PAIR)], unit="percentunit", w=8)
    p.add("Labelled rows of the smaller version (1h)", [
        (f"max by ({pair}, ml_performance_metric) "
         f"(model_challenger:ml_model_labelled:min1h{{{SEL}}})",
         f"{LEGEND_PAIR} {{{{ml_performance_metric}}}}")], w=8,
          description=f"The test is judged from {t.challenger_min_outcomes} rows per version.")
    return _dashboard("otel-ml-versions", "otel-ml / Versions",
                      "Versions of a model compared on production traffic: traffic share, "
                      "latency, errors, prediction distribution, agreement of a shadow "
                      "challenger, and performance with a two-sided test of the difference.", p)


DASHBOARDS["otel-ml-versions.json"] = versions


def render() -> dict[str, str]:
    return {fname: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
            for fname, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    return _generated.main(__doc__, "gen_dashboards.py", DASHBOARDS_DIR, render, argv)


if __name__ == "__main__":
    sys.exit(main())
