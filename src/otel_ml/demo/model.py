"""The demo's model: trained at start-up on data that ships with scikit-learn (no download).

The data is scikit-learn's bundled diabetes study (442 patients: age, sex, body-mass index,
blood pressure and six blood serum measurements ``s1``..``s6``, in their original units). The
target, disease progression one year later, is turned into a binary question: "will
progression be above the median?". The served input also carries ``source``, the clinic the
request comes from (the segment), and ``sex`` is the sensitive attribute for fairness.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from otel_ml._internal.instrument.stages import trace_stage

__all__ = [
    "COLUMNS",
    "FEATURES",
    "NUMERIC",
    "DemoData",
    "DemoService",
    "FeatureStoreTimeout",
    "StudyFigures",
    "ThresholdModel",
    "disagreement_share",
    "feature_matrix",
    "load_data",
    "study_figures",
    "train_model",
]

NUMERIC = ("age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
#: Model inputs (``sex`` is categorical: "1" or "2", as coded in the study).
FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
#: Columns of a request: the features plus the clinic that sent it.
COLUMNS = (*FEATURES, "source")


#: One object per stage, made once (a stage object is reusable and thread-safe).
_STAGES = {name: trace_stage(name) for name in ("load", "preprocess", "features", "predict")}


class FeatureStoreTimeout(TimeoutError):
    """The (simulated) feature store did not answer: what the error burst raises."""


@dataclass
class DemoData:
    """The bundled data set as the demo serves it.

    Attributes:
        frame: One row per patient, columns :data:`COLUMNS` (``source`` is ``"clinic-a"``).
        target: 1 when progression is above the median, else 0.
    """

    frame: Any
    target: np.ndarray


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"the demo needs {module.split('.')[0]}: "
                          "pip install 'otel-ml[demo]'") from None


def load_data() -> DemoData:
    """Load the diabetes data bundled with scikit-learn (no network access)."""
    datasets = _require("sklearn.datasets")
    _require("pandas")
    bunch = datasets.load_diabetes(scaled=False, as_frame=True)
    frame = bunch.frame.copy()
    target = frame.pop("target").to_numpy()
    frame["sex"] = frame["sex"].round().astype(int).astype(str)
    frame["source"] = "clinic-a"
    return DemoData(frame[list(COLUMNS)], (target > np.median(target)).astype(np.int64))


def feature_matrix(frame: Any) -> np.ndarray:
    """The model's input matrix: the numeric features, then 1.0 where ``sex`` is ``"2"``."""
    numeric = frame[list(NUMERIC)].to_numpy(dtype=np.float64)
    sex = (frame["sex"].to_numpy() == "2").astype(np.float64)[:, None]
    return np.hstack([numeric, sex])


def train_model(data: DemoData, seed: int = 0) -> tuple[Any, dict[str, float], float]:
    """Fit scaling + logistic regression on 75% of the rows.

    Returns:
        ``(model, medians, accuracy)``: the fitted pipeline, training medians used to impute
        missing values, and accuracy on the held-out 25%.
    """
    _require("sklearn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test, y_train, y_test = train_test_split(
        data.frame, data.target, test_size=0.25, random_state=seed, stratify=data.target)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(feature_matrix(train), y_train)
    medians = {c: float(train[c].median()) for c in NUMERIC}
    accuracy = float((model.predict(feature_matrix(test)) == y_test).mean())
    return model, medians, accuracy


@dataclass(frozen=True)
class StudyFigures:
    """What the model does on the study rows the traffic replays (the demo's baseline).

    Attributes:
        accuracy: Accuracy on every row of the study (what normal traffic should show).
        true_positive_rate: Per ``sex`` group.
        false_positive_rate: Per ``sex`` group.
        equalized_odds_difference: The larger of the TPR and FPR ranges across the groups.
    """

    accuracy: float
    true_positive_rate: dict[str, float]
    false_positive_rate: dict[str, float]
    equalized_odds_difference: float


def study_figures(model: Any, data: DemoData) -> StudyFigures:
    """Accuracy and group error rates of ``model`` on the whole study (the traffic's rows).

    With the default seed (0) the model's equalized odds difference by ``sex`` on these rows
    is 0.12 (true-positive rate 0.68 for sex 1, 0.80 for sex 2): above the 0.1 limit of
    ``MLFairnessGap``, so that alert is a genuine finding in every phase, not noise. Other
    seeds train on other rows and may land below the limit; the view says which.
    """
    predicted = model.predict(feature_matrix(data.frame))
    actual = data.target
    sex = data.frame["sex"].to_numpy()
    tpr, fpr = {}, {}
    for group in sorted(set(sex)):
        rows = sex == group
        tpr[group] = float((predicted[rows & (actual == 1)] == 1).mean())
        fpr[group] = float((predicted[rows & (actual == 0)] == 1).mean())
    gap = max(max(tpr.values()) - min(tpr.values()), max(fpr.values()) - min(fpr.values()))
    return StudyFigures(float((predicted == actual).mean()), tpr, fpr, float(gap))


class DemoService:
    """The served predict function: load → preprocess → features → predict, each a traced stage.

    Attributes:
        failure_rate: Share of calls whose feature-store lookup fails (the error burst).
        slow_rate: Share of calls that wait ``slow_s`` on a slow dependency.
        slow_s: Extra latency of a slow call.
    """

    def __init__(self, model: Any, medians: dict[str, float], seed: int = 0) -> None:
        self.model = model
        self.medians = medians
        self._medians = np.array([medians[c] for c in NUMERIC])
        self.failure_rate = 0.0
        self.slow_rate = 0.0
        self.slow_s = 0.01
        self._rng = np.random.default_rng(seed + 1)

    def predict(self, records: Any, prediction_id: str | None = None) -> np.ndarray:
        """Predict 0/1 for each row of ``records`` (a DataFrame with :data:`COLUMNS`).

        ``prediction_id`` is the caller's request id: the monitor keeps the predictions under
        it so that the label, when it arrives, is joined to them.
        """
        with _STAGES["load"] as stage:
            stage.rows_in = len(records)
            if self.slow_rate and self._rng.random() < self.slow_rate:
                time.sleep(self.slow_s)
            if self.failure_rate and self._rng.random() < self.failure_rate:
                raise FeatureStoreTimeout("feature store did not answer within 50 ms")
            numeric = records[list(NUMERIC)].to_numpy(dtype=np.float64)
            sex = records["sex"].to_numpy()
            stage.rows_out = len(numeric)
        with _STAGES["preprocess"] as stage:
            stage.rows_in = len(numeric)
            missing = np.isnan(numeric)
            if missing.any():
                numeric = np.where(missing, self._medians, numeric)
            stage.rows_out = len(numeric)
        with _STAGES["features"] as stage:
            stage.rows_in = len(numeric)
            matrix = np.hstack([numeric, (sex == "2").astype(np.float64)[:, None]])
            stage.rows_out = len(matrix)
        with _STAGES["predict"] as stage:
            stage.rows_in = len(matrix)
            labels = self.model.predict(matrix)
            stage.rows_out = len(labels)
        return labels


class ThresholdModel:
    """A classifier's ``predict`` with another decision threshold on its positive-class
    probability: the demo's challenger version.

    Args:
        model: A fitted classifier with ``predict_proba``.
        threshold: Probability above which a row is positive.
    """

    def __init__(self, model: Any, threshold: float) -> None:
        self.model = model
        self.threshold = threshold

    def predict(self, matrix: Any) -> np.ndarray:
        """0/1 per row."""
        return (self.model.predict_proba(matrix)[:, 1] > self.threshold).astype(np.int64)


def disagreement_share(model: Any, data: DemoData, threshold: float) -> float:
    """Share of the study rows where ``model.predict`` and :class:`ThresholdModel` differ
    (the share the shadow phase should show)."""
    matrix = feature_matrix(data.frame)
    return float((model.predict(matrix) != ThresholdModel(model, threshold).predict(matrix)).mean())
