"""Running the zero-code examples as users run them: ``opentelemetry-instrument python ...``.

:func:`instrumented_env` gives the environment of a real ``opentelemetry-instrument`` run that
exports to an OTLP endpoint (the test receiver or the Collector). The instrumentors are found
through the ``opentelemetry_instrumentor`` entry points of the installed ``otel-ml``; a tree
whose installed metadata predates them (an editable install made before this branch) gets them
from a ``.dist-info`` written next to the test, exactly as ``pip install`` would write them.

:func:`run_decorated` runs the same example's ``train``/``serve`` with the model wrapped by
``otel_ml.wrap_model``: the reference the zero-code run is compared with.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GROUP = "opentelemetry_instrumentor"

_DECORATED = r"""
import importlib.util, os, sys
import otel_ml
spec = importlib.util.spec_from_file_location("example", sys.argv[1])
example = importlib.util.module_from_spec(spec)
spec.loader.exec_module(example)
otel_ml.configure()
model, X_train, X_serve = example.train()
model = otel_ml.wrap_model(model, os.environ["OTEL_ML_MODEL_NAME"],
                           os.environ.get("OTEL_ML_MODEL_VERSION", "unknown"),
                           reference=os.environ.get("OTEL_ML_REFERENCE") or None)
served = example.serve(model, X_serve, int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] or None)
print(f"served {served} rows")
otel_ml.shutdown()
"""


def entry_points_declared() -> dict[str, str]:
    """``name -> object reference`` of the instrumentors ``pyproject.toml`` declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return dict(project["entry-points"][GROUP])


def _entry_points_dir(tmp: Path) -> Path | None:
    """A directory with the declared entry points as a distribution's metadata, or ``None``
    when the installed ``otel-ml`` declares them already."""
    declared = entry_points_declared()
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=GROUP)
                 if ep.dist is not None and ep.dist.name.replace("_", "-") == "otel-ml"}
    if all(installed.get(k) == v for k, v in declared.items()):
        return None
    info = tmp / "entry-points" / "otel_ml_zero_code_tests-0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otel-ml-zero-code-tests\n"
                                   "Version: 0\n")
    (info / "entry_points.txt").write_text(
        f"[{GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items()))
    return info.parent


def instrumented_env(tmp: Path, endpoint: str, *, service: str, model: str | None,
                     version: str = "1.0.0", reference: Path | None = None,
                     **extra: str) -> dict[str, str]:
    """The environment of an example run exporting OTLP/HTTP to ``endpoint`` every 500 ms."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and k != "PYTHONPATH"}
    paths = [str(ROOT / "src")]
    extra_dir = _entry_points_dir(tmp)
    if extra_dir is not None:
        paths.append(str(extra_dir))
    env.update({
        "PYTHONPATH": os.pathsep.join(paths),
        "OTEL_SERVICE_NAME": service,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_ML_SYSTEM_METRICS": "false",
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "system_metrics",
        "OTEL_ML_MODEL_VERSION": version,
        **extra,
    })
    if model is not None:
        env["OTEL_ML_MODEL_NAME"] = model
    if reference is not None:
        env["OTEL_ML_REFERENCE"] = str(reference)
    return env


def opentelemetry_instrument() -> str:
    """The ``opentelemetry-instrument`` command of this interpreter's environment."""
    return str(Path(sys.executable).parent / "opentelemetry-instrument")


def run_zero_code(example: str, env: dict[str, str], *args: str,
                  timeout: float = 180) -> subprocess.CompletedProcess:
    """``opentelemetry-instrument python examples/<example> <args>`` (checked)."""
    proc = subprocess.run([opentelemetry_instrument(), sys.executable, str(EXAMPLES / example),
                           *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{example}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_decorated(example: str, env: dict[str, str], calls: int, rows: int,
                  shift: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """The example's model wrapped with ``otel_ml.wrap_model`` (plain ``python``, checked)."""
    proc = subprocess.run([sys.executable, "-c", _DECORATED, str(EXAMPLES / example),
                           str(calls), str(rows), shift or ""], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{example}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def save_reference(example: str, tmp: Path) -> Path:
    """The example's training data profiled with ``otel-ml profile`` (as the README says)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["PYTHONPATH"] = str(ROOT / "src")
    train = tmp / f"{example}.train.csv"
    reference = tmp / f"{example}.reference.json"
    for cmd in ([sys.executable, str(EXAMPLES / example), "--save-training", str(train)],
                [sys.executable, "-m", "otel_ml.cli", "profile", str(train), "--predictions",
                 "prediction", "-o", str(reference), "--quiet"]):
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=180)
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return reference
