"""The new-hospital scenario on a real data set (scikit-learn's bundled diabetes data, raw units).

A classifier predicts whether disease progression is above the median from the ten baseline
variables. Hospitals A and B send rows drawn from the data set as it is; hospital C joins with
different sources: ``bmi`` x1.25 and ``bp`` +20 (blood pressure 20 mm Hg higher). On C the
classifier predicts "high" for 80% of the rows instead of 50%, and its accuracy falls from 0.74
to 0.67. Used by ``tests/test_root_cause.py`` and ``tests/e2e/test_segment_alerts.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HOSPITALS", "SHIFTED", "Hospitals", "load"]

#: Hospital -> share of the traffic (C is the new one).
HOSPITALS = {"A": 0.4, "B": 0.4, "C": 0.2}
#: The features C shifts.
SHIFTED = ("bmi", "bp")


@dataclass
class Hospitals:
    """The fitted model, its reference inputs, and a sampler of traffic per hospital.

    Attributes:
        features: Feature names, in column order.
        x: Every row of the data set (``(442, 10)``, raw units).
        y: Whether progression is above the median (0/1).
        model: A fitted scikit-learn pipeline (scaler + logistic regression).
    """

    features: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    model: object

    def reference(self):
        """An ``otel_ml.Reference`` of the data set with predictions and validation accuracy."""
        from otel_ml import Reference, reference_performance

        predicted = self.model.predict(self.x)
        return Reference.from_data(
            {name: self.x[:, i] for i, name in enumerate(self.features)}, predictions=predicted,
            performance=reference_performance(self.y, predicted, task="classification"))

    def batch(self, rng: np.random.Generator, n: int, shares: dict[str, float] | None = None
              ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``n`` rows drawn with replacement, each from a hospital chosen by ``shares``.

        Returns:
            The input frame (a dict of columns, with ``hospital``) and the labels.
        """
        shares = shares or HOSPITALS
        names = list(shares)
        hospital = rng.choice(np.array(names, dtype=object), n,
                              p=np.array([shares[h] for h in names]))
        rows = rng.integers(0, len(self.x), n)
        x = self.x[rows].copy()
        c = hospital == "C"
        x[c, self.features.index("bmi")] *= 1.25
        x[c, self.features.index("bp")] += 20.0
        frame = {name: x[:, i] for i, name in enumerate(self.features)}
        frame["hospital"] = hospital
        return frame, self.y[rows]

    def predict(self, frame: dict[str, np.ndarray]) -> np.ndarray:
        """The classifier on a frame from :meth:`batch` (the hospital column is not a feature)."""
        return self.model.predict(np.column_stack([frame[f] for f in self.features]))


def load() -> Hospitals:
    """Fit the classifier on the whole data set (the reference is the population traffic is
    drawn from, so healthy hospitals show sampling noise only)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_diabetes(scaled=False)
    y = (data.target > np.median(data.target)).astype(np.int64)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data.data, y)
    return Hospitals(tuple(data.feature_names), np.asarray(data.data, dtype=np.float64), y, model)
