"""Each example runs as a user would run it (a subprocess) and prints what it promises.

The README's links and set-up commands are checked here too: they are the newcomer's path.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from stack.harness import stack_skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def run_example(name: str, *args: str, timeout: float = 120, quiet: bool = False) -> str:
    """Run an example; its standard output. ``quiet``: nothing at all on standard error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_ML_SYSTEM_METRICS"] = "false"
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    if quiet:
        assert proc.stderr == "", proc.stderr
    return proc.stdout


def test_sklearn_pipeline_traces_every_step_and_sees_the_miscalibrated_feature():
    pytest.importorskip("sklearn")
    out = run_example("sklearn_pipeline.py")
    assert "scored 171 rows in 11 calls; drifted so far: none" in out
    drifted = re.search(r"after the miscalibrated batches, drifted: (.*)", out).group(1)
    assert "mean radius" in drifted.split(", ")
    accuracy = float(re.search(r"accuracy on labelled predictions: ([0-9.]+)", out).group(1))
    assert 0.9 < accuracy <= 1.0
    assert "traced stages: classify, reduce, scale" in out


def test_starlette_service_serves_predictions_and_joins_labels():
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    out = run_example("starlette_service.py", "--requests", "40", quiet=True)  # no warning
    assert "40 requests served; a malformed one got HTTP 422" in out
    accuracy = float(re.search(r"accuracy of labelled predictions: ([0-9.]+)", out).group(1))
    assert accuracy > 0.9  # the forest predicts the rows it was trained on
    assert "drifted features: none" in out


def test_starlette_service_without_uvicorn_names_the_extra_instead_of_a_traceback():
    pytest.importorskip("starlette")
    script = str(EXAMPLES / "starlette_service.py")
    hide = ("import runpy, sys\n"
            "sys.modules['uvicorn'] = None  # as if it were not installed\n"
            f"sys.argv = [{script!r}, '--serve']\n"
            f"runpy.run_path({script!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", hide], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "OTEL_ML_SYSTEM_METRICS": "false"})
    assert proc.returncode == 2
    assert proc.stderr == ("starlette_service.py: --serve needs uvicorn: pip install "
                           "'otel-ml[web]' (or pip install uvicorn)\n")
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("uvicorn") for d in extras["optional-dependencies"]["web"])


def test_batch_job_records_late_labels_and_sees_the_supplier_drift():
    pytest.importorskip("sklearn")
    out = run_example("batch_job.py", "--days", "3")
    lines = out.splitlines()
    assert lines[0] == "day 1: scored 400 rows; drifted: none"
    day2 = re.search(r"day 2: scored 400 rows; drifted: (.*)", out).group(1)
    assert day2.startswith("alcohol") and "(south: alcohol)" in day2 and "north" not in day2
    recorded = [line for line in lines if "labels of day" in line]
    assert [line.split(";")[0] for line in recorded] == [
        "day 2: labels of day 1 recorded", "day 3: labels of day 2 recorded"]
    assert all(float(line.rsplit(" ", 1)[1]) > 0.8 for line in recorded)


def test_torch_model_example():
    if importlib.util.find_spec("torch") is None:
        stack_skip_or_fail("torch is not installed (pip install 'otel-ml[torch]' to run this example)")
    out = run_example("torch_model.py", timeout=300)
    assert "scored 569 rows; drifted: none" in out


# ---------------------------------------------------------------------------- README
def test_readme_links_point_at_files_in_the_repository():
    text = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert "docs/configuration.md" in local and "examples/sklearn_pipeline.py" in local
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_readme_gives_exactly_the_two_make_targets_and_they_exist():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    # The demo the README describes is the one make runs: bounded, on the embedded default.
    demo_args = re.search(r"^DEMO_ARGS \?= (.*)$", makefile, re.M).group(1)
    assert "--duration 60" in demo_args and "--otlp" not in demo_args
    assert "otel-ml demo $(DEMO_ARGS)" in makefile


def test_new_hospital_images_drift_in_hospital_c_only():
    pytest.importorskip("sklearn")
    out = run_example("new_hospital_images.py", "--calls", "30")
    assert "hospital A: drifted image properties: none" in out
    assert "hospital B: drifted image properties: none" in out
    drifted = re.search(r"hospital C: drifted image properties: (.*)", out).group(1).split(", ")
    assert {"image.contrast", "image.sharpness"} <= set(drifted)
    assert re.search(r"hospital C: multivariate: features DRIFTED .*; embedding DRIFTED", out)
    for ok in ("A", "B"):
        assert re.search(rf"hospital {ok}: multivariate: features ok .*; embedding ok", out)
    acc = {h: float(a) for h, a in re.findall(r"hospital (\w): accuracy ([0-9.]+)", out)}
    assert acc["A"] > 0.85 and acc["B"] > 0.85 and acc["C"] < acc["A"] - 0.3
