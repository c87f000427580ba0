"""``otel-ml profile --labels/--predictions`` (issue 17): the calibration or loss model is
fitted from the file's labelled rows and stored with the profile."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge

from otel_ml import ModelMonitor, Reference
from otel_ml.cli import EXIT_OK, EXIT_USAGE, main


@pytest.fixture(scope="module")
def loan_csv(tmp_path_factory):
    frame = load_breast_cancer(as_frame=True).frame
    X = frame.drop(columns="target")
    model = LogisticRegression(max_iter=5000).fit(X.iloc[:300], frame.target.iloc[:300])
    val = frame.iloc[300:].copy()
    val["p0"], val["p1"] = model.predict_proba(val.drop(columns="target")).T
    path = tmp_path_factory.mktemp("cli") / "val.csv"
    val.to_csv(path, index=False)
    return path, model, val


def test_profile_with_probability_columns_and_labels(loan_csv, tmp_path, capsys):
    path, model, val = loan_csv
    out = tmp_path / "ref.json"
    assert main(["profile", str(path), "-o", str(out), "--labels", "target",
                 "--predictions", "p0,p1", "--quiet"]) == EXIT_OK
    assert "calibration fitted" in capsys.readouterr().out
    data = json.loads(out.read_text())
    names = [f["name"] for f in data["features"]]
    assert "target" not in names and "p0" not in names and "p1" not in names
    ref = Reference.load(out)
    realised = float(((val.p1 >= 0.5).astype(int) == val.target).mean())
    assert ref.performance["accuracy"] == pytest.approx(realised)
    # The file's calibration is the one from_data fits on the same rows.
    direct = Reference.from_data(val.drop(columns=["target", "p0", "p1"]),
                                 predictions=val[["p0", "p1"]].to_numpy(), labels=val.target)
    grid = np.column_stack([1 - np.linspace(0, 1, 21), np.linspace(0, 1, 21)])
    np.testing.assert_allclose(ref.estimation.calibration.apply(grid),
                               direct.estimation.calibration.apply(grid))
    monitor = ModelMonitor("cli-est", reference=str(out), output="proba")
    monitor(lambda x: val[["p0", "p1"]].to_numpy())(val.drop(columns=["target", "p0", "p1"]))
    assert monitor.performance_report().estimated["rows"] == len(val)


def test_profile_regression_with_labels(tmp_path, capsys):
    frame = load_diabetes(as_frame=True).frame
    model = Ridge().fit(frame.drop(columns="target").iloc[:200], frame.target.iloc[:200])
    val = frame.iloc[200:].copy()
    val["pred"] = model.predict(val.drop(columns="target"))
    path = tmp_path / "val.csv"
    val.to_csv(path, index=False)
    out = tmp_path / "ref.json"
    assert main(["profile", str(path), "-o", str(out), "--labels", "target",
                 "--predictions", "pred", "--quiet"]) == EXIT_OK
    assert "loss model fitted" in capsys.readouterr().out
    ref = Reference.load(out)
    assert ref.estimation.loss is not None
    assert ref.performance["mae"] == pytest.approx(float((val.target - val.pred).abs().mean()))


def test_labels_without_predictions_is_a_usage_error(loan_csv, tmp_path):
    path, _, _ = loan_csv
    assert main(["profile", str(path), "-o", str(tmp_path / "r.json"), "--labels", "target",
                 "--quiet"]) == EXIT_USAGE
