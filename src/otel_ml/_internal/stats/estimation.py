"""Performance estimated without labels: the sufficient statistics a batch adds, and the
estimates with their sampling bands computed from their sum over a window.

Classification (confidence-based): for a row predicted class ``k`` with calibrated
probabilities ``p``, the expected confusion row ``k`` gains ``p`` (the expected count of each
actual class). Accuracy, precision, recall and F1 are the realised formulas applied to the
expected matrix; their band is the delta-method sampling interval of the realised value given
the window's rows (each row's actual class a draw from its calibrated probabilities), which
needs the per-predicted-class second moments ``sum p_j p_l`` (kept up to
:data:`MAX_BAND_CLASSES` classes). Binary ROC AUC: calibrated positive and negative mass per
raw score bin, the AUC of those expected counts, and a Hanley-McNeil band.

Regression (direct loss estimation): the loss model's expected absolute and squared error per
row, summed; MAE and RMSE bands from the per-row variances.

All statistics are sums, so 1-row calls and one batch of the same rows give the same
estimates (up to float rounding), and slots and replicas add.
"""

from __future__ import annotations

import math

from collections.abc import Sequence

import numpy as np

from otel_ml.contract import OTHER

__all__ = ["MAX_BAND_CLASSES", "MAX_EXPORTED_CLASSES", "Z", "ClassAcc", "RegAcc", "band",
           "exported_classes"]

#: Class values the estimation metrics carry at most (as ``ml.model.outcomes`` does): the
#: reference's first classes as they are, the others together as ``"__other__"``.
MAX_EXPORTED_CLASSES = 50


def exported_classes(classes: Sequence[str]) -> list[str]:
    """The attribute value of each class: itself, or ``"__other__"`` beyond the cap."""
    names = [str(c) for c in classes]
    if len(names) <= MAX_EXPORTED_CLASSES:
        return names
    keep = MAX_EXPORTED_CLASSES - 1
    return names[:keep] + [OTHER] * (len(names) - keep)

#: Classes up to which the bands of precision/recall/F1 are computed (second moments: k^3).
MAX_BAND_CLASSES = 16
#: Two-sided 95% normal quantile: the band of every estimate.
Z = 1.959963984540054


def band(value: float, var: float, lo: float = 0.0, hi: float = math.inf) -> dict[str, float]:
    """``{"value", "lower", "upper"}`` with ``value -/+ Z * sqrt(var)`` clipped to [lo, hi]
    (NaN bounds when the variance is unknown)."""
    if not math.isfinite(var):
        return {"value": value, "lower": math.nan, "upper": math.nan}
    half = Z * math.sqrt(max(var, 0.0))
    return {"value": value, "lower": max(lo, value - half), "upper": min(hi, value + half)}


class ClassAcc:
    """Sums of a classifier's calibrated probabilities (one slot and segment, or a total).

    Attributes:
        conf: ``(k, k)`` expected confusion: predicted row, expected actual column.
        m2: ``(k, k, k)`` per predicted class, ``sum p_j p_l`` (``None`` beyond
            :data:`MAX_BAND_CLASSES`).
        pos, neg: Binary: calibrated positive / negative mass per raw score bin (else ``None``).
    """

    __slots__ = ("conf", "m2", "neg", "pos")

    def __init__(self, k: int, auc_bins: int = 0) -> None:
        self.conf = np.zeros((k, k))
        self.m2 = np.zeros((k, k, k)) if k <= MAX_BAND_CLASSES else None
        self.pos = np.zeros(auc_bins) if auc_bins else None
        self.neg = np.zeros(auc_bins) if auc_bins else None

    def add_rows(self, predicted: np.ndarray, cal: np.ndarray, score_bin: np.ndarray | None) -> None:
        """Add rows: predicted class index, calibrated ``(rows, k)``, raw score bin (binary).

        One ``bincount`` per sum (no per-class loops, no einsum): for a binary model the
        positive column alone gives every sum (the negative one is its complement).
        """
        k = self.conf.shape[0]
        if k == 2:
            p1 = cal[:, 1]
            n = np.bincount(predicted, minlength=2).astype(np.float64)
            s1 = np.bincount(predicted, weights=p1, minlength=2)
            s2 = np.bincount(predicted, weights=p1 * p1, minlength=2)
            pos = neg = None
            if self.pos is not None and score_bin is not None:
                pos = np.bincount(score_bin, weights=p1, minlength=len(self.pos))
                neg = np.bincount(score_bin, weights=cal[:, 0], minlength=len(self.pos))
            self.add_binary(n, s1, s2, pos, neg)
            return
        rows = len(predicted)
        base = (predicted * k)[:, None] + np.arange(k)
        self.conf += np.bincount(base.ravel(), weights=cal.ravel(),
                                 minlength=k * k).reshape(k, k)
        if self.m2 is not None:
            idx = (base * k)[:, :, None] + np.arange(k)
            prod = cal[:, :, None] * cal[:, None, :]
            self.m2 += np.bincount(idx.reshape(rows * k * k), weights=prod.ravel(),
                                   minlength=k * k * k).reshape(k, k, k)

    def add_binary(self, n: np.ndarray, s1: np.ndarray, s2: np.ndarray,
                   pos: np.ndarray | None, neg: np.ndarray | None) -> None:
        """Add a binary model's sums: rows, calibrated positive probability and its square
        per predicted class; calibrated positive and negative mass per score bin."""
        self.conf[:, 1] += s1
        self.conf[:, 0] += n - s1
        m2 = self.m2
        m2[:, 1, 1] += s2
        m2[:, 0, 1] += s1 - s2
        m2[:, 1, 0] += s1 - s2
        m2[:, 0, 0] += n - 2 * s1 + s2
        if self.pos is not None and pos is not None and neg is not None:
            self.pos += pos
            self.neg += neg

    def add(self, other: ClassAcc) -> None:
        """Add another accumulator of the same shape."""
        self.conf += other.conf
        if self.m2 is not None and other.m2 is not None:
            self.m2 += other.m2
        if self.pos is not None and other.pos is not None:
            self.pos += other.pos
            self.neg += other.neg

    @property
    def rows(self) -> float:
        """Rows added."""
        return float(self.conf.sum())

    def estimates(self) -> dict[str, dict[str, float]]:
        """Estimated accuracy, precision/recall/F1 (macro) and binary ROC AUC with bands."""
        conf = self.conf
        n = conf.sum()
        if n <= 0:
            return {}
        tp = np.diag(conf).copy()
        pred = conf.sum(axis=1)
        act = conf.sum(axis=0)
        k = len(tp)
        present = (pred > 0) | (act > 1e-12)
        c = max(int(present.sum()), 1)
        out = {}
        zeros = np.zeros(k)
        acc = float(tp.sum() / n)
        out["accuracy"] = band(acc, self._var(np.full(k, 1.0 / n), zeros), 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_k = np.where(pred > 0, tp / pred, 0.0)
            r_k = np.where(act > 0, tp / act, 0.0)
            f_k = np.where(pred + act > 0, 2 * tp / (pred + act), 0.0)
            d_tp_p = np.where(present & (pred > 0), 1.0 / (c * pred), 0.0)
            d_tp_r = np.where(present & (act > 0), 1.0 / (c * act), 0.0)
            d_a_r = np.where(present & (act > 0), -tp / (c * act ** 2), 0.0)
            s = pred + act
            d_tp_f = np.where(present & (s > 0), 2.0 / (c * s), 0.0)
            d_a_f = np.where(present & (s > 0), -2.0 * tp / (c * s ** 2), 0.0)
        out["precision"] = band(float(p_k[present].sum() / c), self._var(d_tp_p, zeros), 0, 1)
        out["recall"] = band(float(r_k[present].sum() / c), self._var(d_tp_r, d_a_r), 0, 1)
        out["f1"] = band(float(f_k[present].sum() / c), self._var(d_tp_f, d_a_f), 0, 1)
        if self.pos is not None:
            auc = self._auc()
            if auc is not None:
                out["roc_auc"] = auc
        return out

    def _var(self, d_tp: np.ndarray, d_a: np.ndarray) -> float:
        """Delta-method variance of ``F(TP, A)`` given its gradient (see the module docs)."""
        if self.m2 is None:
            return math.nan
        k = len(d_tp)
        h = np.tile(d_a, (k, 1))  # h[k, j] = dF/dA_j + [j == k] dF/dTP_k
        h[np.arange(k), np.arange(k)] += d_tp
        first = float((self.conf * h * h).sum())
        second = float(np.einsum("kj,kjl,kl->", h, self.m2, h))
        return first - second

    def _auc(self) -> dict[str, float] | None:
        pos, neg = self.pos, self.neg
        npos, nneg = float(pos.sum()), float(neg.sum())
        if npos <= 0 or nneg <= 0:
            return None
        above = np.cumsum(pos[::-1])[::-1] - pos  # positive mass in higher bins
        auc = float((neg * (above + pos / 2)).sum() / (npos * nneg))
        q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
        var = (auc * (1 - auc) + (npos - 1) * (q1 - auc * auc)
               + (nneg - 1) * (q2 - auc * auc)) / (npos * nneg)
        return band(auc, var, 0.0, 1.0)


class RegAcc:
    """Sums of a regressor's expected losses (one slot and segment, or a total).

    Attributes:
        n: Rows. sa: Sum of expected absolute errors. ss: Sum of expected squared errors.
        sa2: Sum of squared expected absolute errors. ss2: Sum of squared expected squared
            errors.
    """

    __slots__ = ("n", "sa", "sa2", "ss", "ss2")

    def __init__(self) -> None:
        self.n = 0.0
        self.sa = self.ss = self.sa2 = self.ss2 = 0.0

    def add_rows(self, a: np.ndarray, s: np.ndarray) -> None:
        """Add rows' expected absolute and squared errors."""
        self.n += len(a)
        self.sa += float(a.sum())
        self.ss += float(s.sum())
        self.sa2 += float((a * a).sum())
        self.ss2 += float((s * s).sum())

    def add_sums(self, n: float, sa: float, ss: float, sa2: float, ss2: float) -> None:
        """Add rows' sums: count, expected absolute and squared errors, their squares."""
        self.n += n
        self.sa += sa
        self.ss += ss
        self.sa2 += sa2
        self.ss2 += ss2

    def add(self, other: RegAcc) -> None:
        """Add another accumulator."""
        self.n += other.n
        self.sa += other.sa
        self.ss += other.ss
        self.sa2 += other.sa2
        self.ss2 += other.ss2

    @property
    def rows(self) -> float:
        """Rows added."""
        return self.n

    def variance_sum(self) -> float:
        """Sum over rows of the variance of the absolute error."""
        return max(self.ss - self.sa2, 0.0)

    def estimates(self) -> dict[str, dict[str, float]]:
        """Estimated MAE and RMSE with bands (the squared error taken as normal's: var 2s^2)."""
        n = self.n
        if n <= 0:
            return {}
        mae = band(self.sa / n, self.variance_sum() / (n * n), 0.0)
        mse = self.ss / n
        half = Z * math.sqrt(2.0 * self.ss2) / n
        rmse = {"value": math.sqrt(mse), "lower": math.sqrt(max(mse - half, 0.0)),
                "upper": math.sqrt(mse + half)}
        return {"mae": mae, "rmse": rmse}
