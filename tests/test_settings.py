"""Settings: every ModelMonitor option validated once, with its default in one place."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import points

from otel_ml import ModelMonitor
from otel_ml._internal.monitor.settings import DEFAULT_STORE_BYTES, Settings


def test_defaults_live_in_settings_and_the_monitor_keeps_them(providers):
    monitor = ModelMonitor("m", **providers)
    assert monitor.settings == Settings.create("m")
    assert monitor.settings.outcome_store_bytes == DEFAULT_STORE_BYTES == 32 * 1024 * 1024
    assert monitor.settings.fairness_min_group_size == 30
    assert monitor.settings.slots == 60  # 1 h window of 60 s slots
    with pytest.raises(dataclasses.FrozenInstanceError):
        monitor.settings.max_features = 3  # type: ignore[misc]


@pytest.mark.parametrize("window, slot, slots", [
    (3600.0, 60.0, 60), (1.0, 1 / 3, 3), (3.0, 0.3, 10), (0.1, 0.01, 10), (10.0, 3.0, 4)])
def test_slots_cover_the_window(window, slot, slots):
    assert Settings.create("m", drift_window_s=window, slot_s=slot).slots == slots


@pytest.mark.parametrize("option, value, error, match", [
    ("outcome_store_bytes", 0, ValueError, "outcome_store_bytes must be an integer >= 1"),
    ("outcome_store_bytes", 1.5, ValueError, "outcome_store_bytes"),
    ("fairness_min_group_size", 0, ValueError, "fairness_min_group_size must be a positive integer"),
    ("fairness_min_group_size", True, ValueError, "fairness_min_group_size"),
    ("outcome_store_size", -1, ValueError, "outcome_store_size must be an integer >= 0"),
    ("slot_s", 7200.0, ValueError, "must not exceed drift_window_s"),
    ("task", "ranking", ValueError, "task must be one of"),
])
def test_bad_options_fail_fast_with_a_clear_message(providers, option, value, error, match):
    with pytest.raises(error, match=match):
        ModelMonitor("m", **{option: value}, **providers)


def test_environment_read_at_setup_not_at_import(providers, monkeypatch):
    monkeypatch.setenv("OTEL_ML_DRIFT_WINDOW", "600")
    assert ModelMonitor("m", **providers).settings.drift_window_s == 600.0
    monkeypatch.setenv("OTEL_ML_DRIFT_WINDOW", "ten minutes")
    with pytest.raises(ValueError, match="OTEL_ML_DRIFT_WINDOW='ten minutes' is not a number"):
        ModelMonitor("m", **providers)


def _fairness_groups(providers, metric_reader, **options):
    monitor = ModelMonitor("m", task="classification", sensitive_attribute="sex",
                           **options, **providers)
    # group A: 12 labelled rows, group B: 40
    y_true = [1, 0] * 6 + [1, 0] * 20
    y_pred = [1, 1] * 6 + [1, 0] * 20
    monitor.record_outcomes(y_true, y_pred, groups=["A"] * 12 + ["B"] * 40)
    fairness = monitor.performance_report().fairness
    rated = {a["ml.fairness.group"] for a, _ in points(metric_reader, "ml.fairness.group.rate")}
    return fairness.insufficient_groups, rated


def test_fairness_min_group_size_is_a_real_option(providers, metric_reader):
    insufficient, rated = _fairness_groups(providers, metric_reader)
    assert insufficient == ["A"] and rated == {"B"}  # default 30: A's 12 rows are too few


def test_fairness_min_group_size_lowered(providers, metric_reader):
    insufficient, rated = _fairness_groups(providers, metric_reader, fairness_min_group_size=10)
    assert insufficient == [] and rated == {"A", "B"}


def _unmatched_after_big_calls(providers, metric_reader, **options):
    monitor = ModelMonitor("m", task="regression", outcome_store_size=100, **options, **providers)
    predict = monitor(lambda x: x.sum(axis=1))
    for i in range(4):  # 4 calls of 2,000 rows: 16 kB of predictions each
        predict(np.ones((2000, 3)), prediction_id=f"call-{i}")
    monitor.record_outcome("call-0", np.full(2000, 3.0))
    return {a["ml.reason"]: v for a, v in points(metric_reader, "ml.model.outcomes.unmatched")}


def test_outcome_store_bytes_is_a_real_option(providers, metric_reader):
    assert _unmatched_after_big_calls(providers, metric_reader) == {}


def test_outcome_store_bytes_evicts_the_oldest(providers, metric_reader):
    unmatched = _unmatched_after_big_calls(providers, metric_reader, outcome_store_bytes=40_000)
    assert unmatched == {"evicted": 2000}  # counted per label row
