"""The one task inference shared by the feature and outcome sides."""

import numpy as np
import pytest

from otel_ml._internal.stats.task import infer_task


@pytest.mark.parametrize(
    ("predictions", "output", "task"),
    [
        (np.array([0, 1, 1]), "auto", "classification"),
        (np.array([True, False]), "auto", "classification"),
        (np.array(["yes", "no"]), "auto", "classification"),
        (np.array(["yes", None], dtype=object), "auto", "classification"),
        (np.array([0.5, 2.0], dtype=object), "auto", "regression"),
        (np.array([0.2, 3.5]), "auto", "regression"),
        (np.array([[0.2, 0.8], [0.6, 0.4]]), "auto", "classification"),
        (np.array([[0.2], [0.6]]), "auto", "regression"),
        (np.array([0.2, 0.7]), "proba", "classification"),
        (np.array([0.2, 0.7]), "label", "classification"),
        (np.array([1, 2]), "score", "regression"),
        (np.array([[0.1, -2.0, 3.0]]), "score", "classification"),
    ],
)
def test_infer_task(predictions, output, task):
    assert infer_task(predictions, output) == task
