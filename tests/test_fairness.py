"""Fairness: hand-computed group rates and gaps; insufficient groups are marked."""

from __future__ import annotations

import numpy as np
import pytest

from otel_ml._internal.stats.fairness import FAIRNESS_GAPS, fairness_report


def _rows(group, tp, fp, fn, tn):
    y_true = [1] * tp + [0] * fp + [1] * fn + [0] * tn
    y_pred = [1] * tp + [1] * fp + [0] * fn + [0] * tn
    return y_true, y_pred, [group] * (tp + fp + fn + tn)


def _data(*groups):
    y_true, y_pred, g = [], [], []
    for spec in groups:
        a, b, c = _rows(*spec)
        y_true += a
        y_pred += b
        g += c
    return y_true, y_pred, g


def test_rates_and_gaps_hand_computed():
    # A: 40 rows, tp=15 fp=5 fn=5 tn=15 -> selection 20/40=.5, TPR 15/20=.75, FPR 5/20=.25
    # B: 50 rows, tp=10 fp=0 fn=10 tn=30 -> selection 10/50=.2, TPR 10/20=.5, FPR 0/30=0
    y_true, y_pred, groups = _data(("A", 15, 5, 5, 15), ("B", 10, 0, 10, 30))
    report = fairness_report(y_true, y_pred, groups, attribute="sex")
    a, b = report.groups["A"], report.groups["B"]
    assert (a.selection_rate, a.true_positive_rate, a.false_positive_rate) == (0.5, 0.75, 0.25)
    assert (b.selection_rate, b.true_positive_rate, b.false_positive_rate) == (0.2, 0.5, 0.0)
    assert report.demographic_parity_difference == pytest.approx(0.3)
    assert report.disparate_impact_ratio == pytest.approx(0.4)
    assert report.equalized_odds_difference == pytest.approx(0.25)  # max(0.25 TPR, 0.25 FPR)
    assert report.insufficient_groups == []
    assert set(report.gaps()) == set(FAIRNESS_GAPS)
    assert ("A", "selection_rate", 0.5) in report.rates()


def test_small_groups_are_marked_not_judged():
    # C has 10 rows and an extreme selection rate: it must not move the gaps.
    y_true, y_pred, groups = _data(("A", 15, 5, 5, 15), ("B", 10, 0, 10, 30), ("C", 10, 0, 0, 0))
    report = fairness_report(y_true, y_pred, groups, min_group_size=30)
    c = report.groups["C"]
    assert not c.sufficient and c.count == 10
    assert (c.selection_rate, c.true_positive_rate, c.false_positive_rate) == (None, None, None)
    assert report.insufficient_groups == ["C"]
    assert report.demographic_parity_difference == pytest.approx(0.3)
    assert all(group != "C" for group, _, _ in report.rates())
    # with a lower minimum, C counts
    assert fairness_report(y_true, y_pred, groups, min_group_size=5
                           ).demographic_parity_difference == pytest.approx(0.8)


def test_one_sufficient_group_has_no_gaps_and_undefined_rates_are_none():
    y_true, y_pred, groups = _data(("A", 0, 5, 0, 35), ("B", 1, 0, 0, 0))
    report = fairness_report(y_true, y_pred, groups)
    assert report.groups["A"].true_positive_rate is None  # no actual positives
    assert report.groups["A"].false_positive_rate == pytest.approx(5 / 40)
    assert report.gaps() == {}
    assert report.to_dict()["insufficient_groups"] == ["B"]


def test_agrees_with_direct_computation_on_random_data():
    rng = np.random.default_rng(3)
    n = 3000
    groups = rng.choice(["x", "y", "z"], n)
    y_true = rng.integers(0, 2, n)
    y_pred = np.where(groups == "x", rng.uniform(size=n) < 0.7,
                      rng.uniform(size=n) < 0.4).astype(int)
    report = fairness_report(y_true, y_pred, groups)
    sel = {g: y_pred[groups == g].mean() for g in "xyz"}
    tpr = {g: y_pred[(groups == g) & (y_true == 1)].mean() for g in "xyz"}
    fpr = {g: y_pred[(groups == g) & (y_true == 0)].mean() for g in "xyz"}
    assert report.demographic_parity_difference == pytest.approx(
        max(sel.values()) - min(sel.values()), abs=1e-12)
    assert report.disparate_impact_ratio == pytest.approx(
        min(sel.values()) / max(sel.values()), abs=1e-12)
    assert report.equalized_odds_difference == pytest.approx(
        max(max(tpr.values()) - min(tpr.values()), max(fpr.values()) - min(fpr.values())),
        abs=1e-12)


def test_misuse_raises():
    with pytest.raises(ValueError, match="length"):
        fairness_report([1, 0], [1], ["a", "b"])
    with pytest.raises(ValueError, match="min_group_size"):
        fairness_report([1], [1], ["a"], min_group_size=0)
