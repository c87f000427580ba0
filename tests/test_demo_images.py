"""``otel-ml demo --images``: the image phase shows drift of hospital C's images only."""

from __future__ import annotations

import io

import pytest

pytest.importorskip("sklearn")

from otel_ml.cli import main  # noqa: E402
from otel_ml.demo.images import run_image_demo  # noqa: E402


def test_image_demo_shows_the_new_scanner_in_hospital_c_only():
    out = io.StringIO()
    monitor = run_image_demo(duration_s=4.0, rate=40.0, out=out, rows=48)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("otel-ml demo --images")
    assert any(line.startswith("[normal") for line in lines)
    last = lines[-1]
    assert last.startswith("[end") and "C: drift " in last
    parts = {p.split(":")[0].strip(): p for p in last.split("|")[1:]}
    assert "drift none; joint ok" in parts["A"] and "drift none; joint ok" in parts["B"]
    assert "contrast" in parts["C"] and "sharpness" in parts["C"]
    assert "joint features,embedding" in parts["C"]
    report = monitor.drift_report()
    assert not report.segments["A"].drifted_features
    assert report.segments["C"].multivariate["reconstruction_error"]["drifted"]


def test_cli_runs_the_image_demo(capsys):
    assert main(["demo", "--images", "--duration", "1", "--no-live"]) == 0
    assert "otel-ml demo --images" in capsys.readouterr().out
