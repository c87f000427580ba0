"""The version-comparison recording rules compute the library's own test statistics.

On random counters, ``model_challenger:ml_model_improvement:z1h`` (run by promtool on the
shipped rules) equals :func:`pooled_z` for accuracy and :func:`welch_z` for MAE, and the
agreement rate equals the share computed here: the benchmark's calibration, which evaluates
those formulas on simulated counters, is therefore a calibration of the alert condition.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from otel_ml._internal.stats.significance import pooled_z, welch_z

REPO = Path(__file__).resolve().parents[1]
JOB = 'job="svc", instance="a"'
ORDER = ["otel-ml.calls", "otel-ml.drift", "otel-ml.drift-24h", "otel-ml.drift-segment",
         "otel-ml.data-quality", "otel-ml.performance", "otel-ml.root-cause",
         "otel-ml.versions"]


def _promtool() -> str:
    path = os.environ.get("OTEL_ML_PROMTOOL_BIN") or shutil.which("promtool")
    if not path:
        if os.environ.get("OTEL_ML_REQUIRE_STACK", "").strip() == "1":
            pytest.fail("promtool not found (OTEL_ML_REQUIRE_STACK=1)")
        pytest.skip("promtool not found: run `python tools/stack.py install`")
    return path


def _round(value: float, to: float = 1e-9) -> float:
    """PromQL's ``round(v, to)``."""
    inverse = 1.0 / to
    return math.floor(value * inverse + 0.5) / inverse


def _series(name: str, labels: str, per_minute: float) -> dict:
    return {"series": f"{name}{{{JOB}, {labels}}}", "values": f"0+{per_minute}x15"}


def test_rules_compute_the_library_statistics(tmp_path):
    promtool = _promtool()
    rng = np.random.default_rng(19)
    minutes = 10  # evaluated at 10m: increase over the (1h) window = 10 minutes of counts
    series, samples, agreement = [], [], []
    for k in range(6):  # classification pairs: model c<k>, versions 1 (champion) and 2
        model = f"c{k}"
        series.append(_series("ml_model_comparison_info",
                              f'ml_model_name="{model}", ml_model_version="1", '
                              f'ml_model_challenger_version="2", ml_comparison_mode="shadow"', 1))
        counts = {}
        for version in ("1", "2"):
            n = int(rng.integers(50, 400))
            right = int(rng.binomial(n, rng.uniform(0.6, 0.95)))
            counts[version] = (right * minutes, n * minutes)
            labels = f'ml_model_name="{model}", ml_model_version="{version}", ml_segment="s"'
            series.append(_series("ml_model_outcomes_total", labels
                                  + ', ml_class_predicted="1", ml_class_actual="1"', right))
            series.append(_series("ml_model_outcomes_total", labels
                                  + ', ml_class_predicted="0", ml_class_actual="1"', n - right))
        z = pooled_z(*counts["1"], *counts["2"])
        samples.append((model, "accuracy", z))
        rows, dis = int(rng.integers(100, 1000)), 0
        dis = int(rng.integers(0, rows))
        pair = f'ml_model_name="{model}", ml_model_version="1", ml_model_challenger_version="2"'
        series.append(_series("ml_model_comparison_rows_total", pair, rows))
        series.append(_series("ml_model_comparison_disagreements_total", pair, dis))
        agreement.append((model, 1 - dis / rows))
    for k in range(4):  # regression pairs
        model = f"r{k}"
        series.append(_series("ml_model_comparison_info",
                              f'ml_model_name="{model}", ml_model_version="1", '
                              f'ml_model_challenger_version="2", ml_comparison_mode="split"', 1))
        sums = {}
        for version in ("1", "2"):
            errors = np.abs(rng.normal(0, rng.uniform(0.5, 2.0), size=int(rng.integers(50, 300))))
            n, s1, s2 = len(errors), round(float(errors.sum()), 6), round(float((errors ** 2).sum()), 6)
            sums[version] = (s1 / n, s2 / n, n * minutes)
            labels = f'ml_model_name="{model}", ml_model_version="{version}", ml_segment="s"'
            series.append(_series("ml_model_error_absolute_count", labels, n))
            series.append(_series("ml_model_error_absolute_sum", labels, s1))
            series.append(_series("ml_model_error_squared_total", labels, s2))
        z, _ = welch_z(*sums["1"], *sums["2"])
        samples.append((model, "mae", z))

    def sample(model: str, extra: str, value: float) -> dict:
        return {"labels": f'{{job="svc", ml_model_name="{model}", ml_model_version="1", '
                          f'ml_model_challenger_version="2"{extra}}}', "value": value}

    tests = [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [
            # Rounded to 1e-9 as PromQL's round() does: the two sides add the same numbers in
            # another order, which can differ in the last bit.
            {"expr": "round(model_challenger:ml_model_improvement:z1h, 1e-9)",
             "eval_time": f"{minutes}m",
             "exp_samples": [sample(m, f', ml_performance_metric="{metric}"', _round(z))
                             for m, metric, z in samples]},
            {"expr": "model_challenger:ml_model_comparison_agreement:ratio1h",
             "eval_time": f"{minutes}m",
             "exp_samples": [
                 {"labels": "model_challenger:ml_model_comparison_agreement:ratio1h"
                            + sample(m, "", v)["labels"], "value": v}
                 for m, v in agreement]},
        ]}]
    doc = {"rule_files": [str(p) for p in sorted((REPO / "prometheus" / "rules").glob("*.yml"))],
           "evaluation_interval": "1m", "group_eval_order": ORDER, "tests": tests}
    path = tmp_path / "versions_random_test.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
