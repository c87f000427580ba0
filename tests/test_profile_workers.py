"""``otel-ml profile`` on a folder or glob of Parquet files with ``--workers``: the same profile
as one process over the same rows; files that disagree are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from otel_ml import Reference
from otel_ml.integrations.local_files import data_files, profile_files
from partition_data import assert_same_reference, diabetes, iris

pytest.importorskip("pyarrow")


def _write(folder: Path, frames: list[pd.DataFrame]) -> None:
    folder.mkdir()
    for i, frame in enumerate(frames):
        frame.reset_index(drop=True).to_parquet(folder / f"part-{i:03d}.parquet")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_ml.cli", *args], capture_output=True,
                          text=True, timeout=240)


def test_workers_on_a_folder_equal_from_data(tmp_path: Path) -> None:
    frame = iris()
    _write(tmp_path / "data", [frame.iloc[:135], frame.iloc[135:135], frame.iloc[135:]])
    out = tmp_path / "ref.json"
    run = _cli("profile", str(tmp_path / "data"), "-o", str(out), "--workers", "2",
               "--predictions", "prediction", "--exclude", "label", "--quiet")
    assert run.returncode == 0, run.stderr
    assert "150 rows from 3 file(s)" in run.stdout
    expected = Reference.from_data(frame.drop(columns=["prediction", "label"]),
                                   predictions=frame["prediction"])
    assert_same_reference(Reference.load(out), expected)


def test_a_glob_in_one_process_and_in_two_give_the_same_profile(tmp_path: Path) -> None:
    frame = diabetes().drop(columns=["sex_group"])
    _write(tmp_path / "data", [frame.iloc[i:i + 100] for i in range(0, len(frame), 100)])
    paths = data_files(str(tmp_path / "data" / "part-*.parquet"))
    assert len(paths) == 5
    one = profile_files(paths, workers=1, predictions="prediction", labels="target")
    two = profile_files(paths, workers=2, predictions="prediction", labels="target")
    assert_same_reference(two.reference, one.reference)
    assert one.reference.performance is not None and "mae" in one.reference.performance


def test_the_second_pass_counts_shares_exactly_beyond_the_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.lognormal(size=3_000), "y": rng.integers(0, 7, 3_000)})
    _write(tmp_path / "data", [frame.iloc[:2_000], frame.iloc[2_000:]])
    paths = data_files(tmp_path / "data")
    got = profile_files(paths, workers=2, sample_size=500).reference.features["x"]
    values = np.sort(frame["x"].to_numpy())
    counts = np.diff(np.concatenate(([0], np.searchsorted(values, got.edges), [3_000])))
    assert got.shares.tolist() == (counts / 3_000).tolist()
    assert got.count == 3_000 and got.mean == pytest.approx(values.mean(), rel=1e-12)


def test_files_that_disagree_on_a_type_are_named(tmp_path: Path) -> None:
    frame = diabetes()[["age", "bmi"]]
    bad = frame.iloc[200:].astype({"bmi": str})
    _write(tmp_path / "data", [frame.iloc[:200], bad])
    run = _cli("profile", str(tmp_path / "data"), "-o", str(tmp_path / "r.json"),
               "--workers", "2", "--quiet")
    assert run.returncode == 3
    assert "column 'bmi' is numeric in partition 0 and not numeric" in run.stderr
    assert "partition 1 = " in run.stderr and "part-001.parquet" in run.stderr


def test_an_empty_folder_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    run = _cli("profile", str(tmp_path / "empty"), "-o", str(tmp_path / "r.json"), "--quiet")
    assert run.returncode == 3 and "no data files" in run.stderr
