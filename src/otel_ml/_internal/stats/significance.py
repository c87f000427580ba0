"""Two-sided tests of a challenger's performance against its champion's.

- Accuracy (and its complement, the error rate): the two-proportion z test with the pooled
  proportion, :func:`two_proportion_test`.
- A regression error (mean absolute error): Welch's t test on the per-row absolute errors,
  from the sums the outcome counters keep (count, sum of ``|e|``, sum of ``e**2``: the
  variance of ``|e|`` is ``mean(e**2) - mean(|e|)**2``), :func:`welch_test`.

Both report an *improvement* statistic: positive when the challenger is better (higher
accuracy, lower MAE). The recording rule ``model_challenger:ml_model_improvement:z1h``
computes the same statistic from the exported counters (for Welch, with the normal quantile in
place of Student's: the minimum sample size makes them agree to the third decimal), and the
alerts compare it with :attr:`otel_ml.thresholds.Thresholds.challenger_z`. Below the minimum
sample size of either version the verdict is ``"insufficient_data"``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from scipy import special

__all__ = ["SignificanceTest", "pooled_z", "two_proportion_test", "welch_test", "welch_z"]


@dataclass(frozen=True)
class SignificanceTest:
    """A challenger against its champion on one performance metric.

    Attributes:
        metric: ``"accuracy"`` or ``"mae"``.
        test: ``"two_proportion_z"`` or ``"welch_t"``.
        champion: The champion's value.
        challenger: The challenger's value.
        difference: ``challenger - champion``.
        statistic: Improvement statistic: positive when the challenger is better.
        p_value: Two-sided p-value (``nan`` when not computable).
        n_champion: Labelled rows of the champion.
        n_challenger: Labelled rows of the challenger.
        alpha: Significance level.
        min_samples: Labelled rows each version needs before a verdict.
    """

    metric: str
    test: str
    champion: float
    challenger: float
    difference: float
    statistic: float
    p_value: float
    n_champion: int
    n_challenger: int
    alpha: float
    min_samples: int

    @property
    def enough_data(self) -> bool:
        """Both versions have at least ``min_samples`` labelled rows."""
        return min(self.n_champion, self.n_challenger) >= self.min_samples

    @property
    def significant(self) -> bool:
        """Enough data and ``p_value < alpha``."""
        return self.enough_data and self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        """``"better"``, ``"worse"``, ``"no_difference"`` or ``"insufficient_data"``."""
        if not self.enough_data:
            return "insufficient_data"
        if not self.significant:
            return "no_difference"
        return "better" if self.statistic > 0 else "worse"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, with the verdict."""
        return {**asdict(self), "verdict": self.verdict}


def pooled_z(correct_a: float, n_a: float, correct_b: float, n_b: float) -> float:
    """Two-proportion z of ``b`` against ``a`` with the pooled proportion (``nan`` when the
    pooled variance is zero or a side is empty). The recording rule's formula."""
    if n_a <= 0 or n_b <= 0:
        return math.nan
    pooled = (correct_a + correct_b) / (n_a + n_b)
    var = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
    if var <= 0:
        return math.nan
    return (correct_b / n_b - correct_a / n_a) / math.sqrt(var)


def two_proportion_test(correct_a: float, n_a: float, correct_b: float, n_b: float, *,
                        alpha: float, min_samples: int, metric: str = "accuracy"
                        ) -> SignificanceTest:
    """Accuracy of ``b`` (challenger) against ``a`` (champion): pooled two-proportion z test.

    Args:
        correct_a: Correct predictions of the champion.
        n_a: Labelled predictions of the champion.
        correct_b: Correct predictions of the challenger.
        n_b: Labelled predictions of the challenger.
        alpha: Two-sided significance level.
        min_samples: Labelled rows each side needs before a verdict.
        metric: Name reported (``"accuracy"``).
    """
    pa = correct_a / n_a if n_a > 0 else math.nan
    pb = correct_b / n_b if n_b > 0 else math.nan
    z = pooled_z(correct_a, n_a, correct_b, n_b)
    if math.isnan(z) and n_a > 0 and n_b > 0:  # both all right or all wrong: no difference
        z = 0.0
    p = 2.0 * special.ndtr(-abs(z)) if not math.isnan(z) else math.nan
    return SignificanceTest(metric, "two_proportion_z", pa, pb, pb - pa, z, float(p),
                            int(n_a), int(n_b), alpha, min_samples)


def welch_z(mean_a: float, meansq_a: float, n_a: float, mean_b: float, meansq_b: float,
            n_b: float) -> tuple[float, float]:
    """Welch's statistic for the mean absolute error of ``b`` against ``a``, as improvement
    (``(mae_a - mae_b) / se``), and the Welch-Satterthwaite degrees of freedom.

    ``mean`` is the mean absolute error, ``meansq`` the mean squared error (so the variance of
    the absolute error is ``meansq - mean**2``). ``(nan, nan)`` when not computable.
    """
    if n_a < 2 or n_b < 2:
        return math.nan, math.nan
    va = max(meansq_a - mean_a * mean_a, 0.0) * n_a / (n_a - 1)
    vb = max(meansq_b - mean_b * mean_b, 0.0) * n_b / (n_b - 1)
    sa, sb = va / n_a, vb / n_b
    if sa + sb <= 0:
        return (0.0 if mean_a == mean_b else math.copysign(math.inf, mean_a - mean_b)), math.inf
    t = (mean_a - mean_b) / math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa * sa / (n_a - 1) + sb * sb / (n_b - 1)) if sa * sb > 0 \
        else (n_a - 1 if sa > 0 else n_b - 1)
    return t, df


def welch_test(mae_a: float, rmse_a: float, n_a: float, mae_b: float, rmse_b: float, n_b: float,
               *, alpha: float, min_samples: int) -> SignificanceTest:
    """MAE of ``b`` (challenger) against ``a`` (champion): Welch's t test on absolute errors.

    Args:
        mae_a: Mean absolute error of the champion.
        rmse_a: Root mean squared error of the champion.
        n_a: Labelled rows of the champion.
        mae_b: Mean absolute error of the challenger.
        rmse_b: Root mean squared error of the challenger.
        n_b: Labelled rows of the challenger.
        alpha: Two-sided significance level.
        min_samples: Labelled rows each side needs before a verdict.
    """
    t, df = welch_z(mae_a, rmse_a * rmse_a, n_a, mae_b, rmse_b * rmse_b, n_b)
    if math.isnan(t):
        p = math.nan
    elif math.isinf(t):
        p = 0.0
    else:
        p = float(2.0 * special.stdtr(df, -abs(t)))
    return SignificanceTest("mae", "welch_t", mae_a, mae_b, mae_b - mae_a, t, p,
                            int(n_a), int(n_b), alpha, min_samples)
