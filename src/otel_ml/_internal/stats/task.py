"""The one task inference: is a model a classifier or a regressor, judged from its predictions.

Both the feature side (the prediction's profile) and the outcome side (scoring against labels)
ask :func:`infer_task`, so they never disagree about the same model.
"""

from __future__ import annotations

import numpy as np

from otel_ml._internal.data.inputs import is_categorical

__all__ = ["CLASSIFICATION", "REGRESSION", "TaskGuess", "infer_task"]

CLASSIFICATION = "classification"
REGRESSION = "regression"


def infer_task(predictions: np.ndarray, output: str = "auto") -> str:
    """The task a model's predictions show.

    Rules, in order: a declared ``label`` or ``proba`` output is classification; two or more
    columns (one per class: probabilities or decision scores) are classification; a declared
    ``score`` output is regression; class-like values (integers, booleans, strings, objects
    that are not all numbers) are classification; other numbers are regression.

    Args:
        predictions: The predictions as an array (any shape numpy accepts).
        output: The declared output kind: ``"auto"``, ``"label"``, ``"proba"`` or ``"score"``.

    Returns:
        ``"classification"`` or ``"regression"``.

    Example:
        >>> infer_task(np.array([0, 1, 1]))
        'classification'
        >>> infer_task(np.array([0.2, 3.5]))
        'regression'
        >>> infer_task(np.array([[0.2, 0.8]]), "score")
        'classification'
    """
    if output in ("label", "proba"):
        return CLASSIFICATION
    if predictions.ndim == 2 and predictions.shape[1] >= 2:
        return CLASSIFICATION
    if output == "score":
        return REGRESSION
    kind = predictions.dtype.kind
    if kind in "biuUS":
        return CLASSIFICATION
    if kind == "O":
        return CLASSIFICATION if is_categorical(predictions) else REGRESSION
    return REGRESSION


class TaskGuess:
    """A model's task: as declared, or as its first predictions showed (shared by the parts
    of the outcome side, so they agree).

    Args:
        declared: ``"auto"``, ``"classification"`` or ``"regression"``.
        output: The monitor's declared output (``output=``), used for predictions whose own
            output is ``"auto"``.

    Attributes:
        declared: The declared task.
        output: The monitor's declared output.
        inferred: The task the first predictions showed (``None`` until seen, or when declared).
        known: Whether the task is settled (declared, or inferred already).
    """

    __slots__ = ("declared", "inferred", "known", "output")

    def __init__(self, declared: str = "auto", output: str = "auto") -> None:
        self.declared = declared
        self.output = output
        self.inferred: str | None = None
        self.known = declared != "auto"

    def see(self, predictions: np.ndarray, output: str = "auto") -> None:
        """Infer the task from these predictions unless it is settled."""
        if not self.known:
            self.inferred = infer_task(predictions, self.output if output == "auto" else output)
            self.known = True

    def resolve(self, predictions: np.ndarray, output: str = "auto") -> str:
        """The task to score ``predictions`` with: the settled one, else what they show."""
        if self.declared != "auto":
            return self.declared
        return self.inferred or infer_task(predictions,
                                           self.output if output == "auto" else output)

    def reset(self) -> None:
        """Forget the inferred task (in a forked child)."""
        self.inferred = None
        self.known = self.declared != "auto"
