"""Two-sided tests of a challenger and the row-by-row comparison of two versions' outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge

from otel_ml._internal.stats.comparison import compare_outputs, distribution_distance
from otel_ml._internal.stats.significance import (pooled_z, two_proportion_test, welch_test,
                                                  welch_z)
from otel_ml.contract import Skip


def test_two_proportion_z_squared_is_pearsons_chi_square():
    table = np.array([[812, 188], [853, 147]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    t = two_proportion_test(812, 1000, 853, 1000, alpha=0.01, min_samples=500)
    assert t.statistic ** 2 == pytest.approx(chi2)
    assert t.p_value == pytest.approx(p)
    assert t.statistic > 0 and t.difference == pytest.approx(0.041)
    assert 0.01 < t.p_value < 0.05 and t.verdict == "no_difference"  # at alpha 0.01
    looser = two_proportion_test(812, 1000, 853, 1000, alpha=0.05, min_samples=500)
    assert looser.verdict == "better"


def test_verdicts_need_the_minimum_sample_and_the_level():
    assert two_proportion_test(80, 100, 95, 100, alpha=0.01, min_samples=1000).verdict == \
        "insufficient_data"
    assert two_proportion_test(8000, 10000, 8010, 10000, alpha=0.01,
                               min_samples=1000).verdict == "no_difference"
    assert two_proportion_test(8500, 10000, 8000, 10000, alpha=0.01,
                               min_samples=1000).verdict == "worse"
    assert two_proportion_test(10, 10, 10, 10, alpha=0.01, min_samples=1).statistic == 0.0
    assert math.isnan(pooled_z(1, 0, 1, 1))


def test_welch_on_real_regression_errors_matches_scipy():
    data = load_diabetes()
    x, y = data.data, data.target
    lin = LinearRegression().fit(x[:200], y[:200])
    ridge = Ridge(alpha=10.0).fit(x[:200], y[:200])
    ea = np.abs(lin.predict(x[200:]) - y[200:])
    eb = np.abs(ridge.predict(x[200:]) - y[200:])
    expected = stats.ttest_ind(ea, eb, equal_var=False)
    # From the sums the counters keep: mean |e| and mean e^2 (RMSE^2).
    t = welch_test(ea.mean(), math.sqrt((ea ** 2).mean()), len(ea),
                   eb.mean(), math.sqrt((eb ** 2).mean()), len(eb), alpha=0.01, min_samples=10)
    assert t.statistic == pytest.approx(expected.statistic)
    assert t.p_value == pytest.approx(expected.pvalue)
    assert t.verdict == ("worse" if t.p_value < 0.01 else "no_difference")
    z, df = welch_z(ea.mean(), (ea ** 2).mean(), len(ea), eb.mean(), (eb ** 2).mean(), len(eb))
    assert z == pytest.approx(expected.statistic) and df > 100


def test_compare_outputs_by_kind():
    labels = compare_outputs(np.array(["a", "b", "c"]), np.array(["a", "x", "c"]))
    assert (labels.rows, labels.disagreements) == (3, 1)
    ints = compare_outputs([0, 1, 1, 0], [0, 1, 0, 0])
    assert (ints.rows, ints.disagreements, ints.abs_diff) == (4, 1, 1.0)
    values = compare_outputs([1.0, 2.0, 3.0], [1.5, 2.0, 1.0])
    assert values.disagreements == 0
    assert values.abs_diff == pytest.approx(2.5) and values.sq_diff == pytest.approx(4.25)
    proba = compare_outputs([[0.9, 0.1], [0.4, 0.6]], [[0.8, 0.2], [0.7, 0.3]])
    assert proba.disagreements == 1
    assert proba.abs_diff == pytest.approx(0.1 + 0.3)
    positive = compare_outputs([0.2, 0.7], [0.6, 0.8], task="classification")
    assert positive.disagreements == 1
    assert compare_outputs([1, 2], [1, 2, 3]) == Skip.SHAPE_MISMATCH
    assert compare_outputs([1, 2], ["a", "b"]) == Skip.TYPE_MISMATCH
    assert compare_outputs(5, 5).rows == 1
    nan = compare_outputs([1.0, np.nan], [2.0, 1.0])
    assert nan.rows == 2 and nan.abs_diff == 1.0


def test_distribution_distance_is_the_rules_psi_and_js():
    psi, js = distribution_distance({"0": 500, "1": 500}, {"0": 700, "1": 300})
    assert psi == pytest.approx(0.2 * math.log(0.7 / 0.5) + 0.2 * math.log(0.5 / 0.3))
    p, q = np.array([0.5, 0.5]), np.array([0.7, 0.3])
    from scipy.spatial.distance import jensenshannon

    assert js == pytest.approx(jensenshannon(p, q, base=2))
    assert distribution_distance({}, {"0": 1}) is None
    same = distribution_distance({"0": 3, "1": 1}, {"0": 30, "1": 10})
    assert same == (pytest.approx(0.0), pytest.approx(0.0, abs=1e-7))
