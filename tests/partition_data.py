"""Shared by the partitioned-profile tests: bundled data sets, skewed partitionings, and the
comparison of a partitioned profile with ``Reference.from_data`` on the same rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes, load_iris

from otel_ml import Reference

#: Moments merged over partitions differ from one pass by rounding only.
MOMENT_TOLERANCE = 1e-12


def diabetes() -> pd.DataFrame:
    """scikit-learn's diabetes data (442 rows, 10 numeric features, a numeric target), with a
    segment column ``sex_group`` and a model's (rounded-target) prediction."""
    frame = load_diabetes(as_frame=True).frame
    frame["sex_group"] = np.where(frame["sex"] > 0, "a", "b")
    frame["prediction"] = frame["target"].round(-1)
    return frame


def iris() -> pd.DataFrame:
    """scikit-learn's iris data with the species as strings (a categorical feature) and an
    integer class label and prediction."""
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = np.asarray(data.target_names)[data.target]
    frame["label"] = data.target.astype(np.int64)
    frame["prediction"] = np.where(frame["petal_length"] > 4.8, 2,
                                   np.where(frame["petal_length"] > 2.5, 1, 0)).astype(np.int64)
    return frame.drop(columns=["target"])


def skewed_slices(rows: int) -> list[slice]:
    """Four partitions: 90% of the rows, an empty one, 4%, the rest; and a trailing empty."""
    big, small = int(rows * 0.9), int(rows * 0.04)
    return [slice(0, big), slice(big, big), slice(big, big + small),
            slice(big + small, rows), slice(rows, rows)]


def assert_same_reference(got: Reference, expected: Reference) -> None:
    """Everything equal; means and standard deviations within rounding of each other."""
    a, b = got.to_dict(), expected.to_dict()
    assert a["rows"] == b["rows"]
    assert a["performance"] == _approx(b["performance"])
    for fa, fb in zip(a["features"] + [a["prediction"]], b["features"] + [b["prediction"]]):
        _same_profile(fa, fb)
    assert [f["name"] for f in a["features"]] == [f["name"] for f in b["features"]]


def _same_profile(a: dict[str, Any] | None, b: dict[str, Any] | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    scale = max(abs(b.get("std") or 0.0), abs(b.get("mean") or 0.0), 1e-300)
    for key in a.keys() | b.keys():
        if key in ("mean", "std"):
            assert abs(a[key] - b[key]) <= MOMENT_TOLERANCE * scale, (a["name"], key)
        else:
            assert a[key] == b[key], (a["name"], key)


def _approx(values: dict[str, float] | None) -> Any:
    if values is None:
        return None
    import pytest

    return {k: pytest.approx(v, rel=1e-12, abs=1e-12) if math.isfinite(v) else v
            for k, v in values.items()}
