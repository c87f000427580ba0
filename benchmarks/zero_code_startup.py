"""Start-up cost of ``opentelemetry-instrument`` with otel_ml's instrumentors installed.

    .venv/bin/python benchmarks/zero_code_startup.py [--repeats 15]

Times whole processes (medians, runs interleaved so load drifts hit every row alike):

* ``python -c pass`` under ``opentelemetry-instrument`` with the ``sklearn``, ``xgboost`` and
  ``lightgbm`` instrumentors loaded, against the same command with the three disabled
  (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``): the start-up cost they add (target <= 50 ms);
* ``import sklearn`` the same two ways: the cost paid when the application imports the
  library (patching, and importing otel_ml itself, which the instrumentors put off until then).

Exporters are off (``none``): start-up only. Exit status 1 when the start-up target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("sklearn", "xgboost", "lightgbm")
TARGET_MS = 50.0


def _env(entry_points: Path | None, disabled: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    paths = [str(ROOT / "src")] + ([str(entry_points)] if entry_points else [])
    env.update({"PYTHONPATH": os.pathsep.join(paths), "OTEL_TRACES_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled})
    return env


def _entry_points(tmp: Path) -> Path | None:
    """The instrumentors' entry points as installed metadata, when the installed otel-ml
    predates them (an editable install made earlier); else ``None``."""
    import importlib.metadata

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "entry-points"]["opentelemetry_instrumentor"]
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(
        group="opentelemetry_instrumentor")}
    if all(installed.get(k) == v for k, v in declared.items()):
        return None
    info = tmp / "otel_ml_bench_entry_points-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: otel-ml-bench\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[opentelemetry_instrumentor]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items()))
    return tmp


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    instrument = str(Path(sys.executable).parent / "opentelemetry-instrument")
    with tempfile.TemporaryDirectory() as tmp:
        eps = _entry_points(Path(tmp))
        on = _env(eps, "system_metrics")
        off = _env(eps, ",".join(("system_metrics",) + OURS))
        rows = {
            "python -c pass (no opentelemetry-instrument)": ([sys.executable, "-c", "pass"], off),
            "start-up: instrumentors disabled (baseline)": (
                [instrument, sys.executable, "-c", "pass"], off),
            "start-up: instrumentors loaded": ([instrument, sys.executable, "-c", "pass"], on),
            "import sklearn: instrumentors disabled (baseline)": (
                [instrument, sys.executable, "-c", "import sklearn.linear_model"], off),
            "import sklearn: instrumentors loaded": (
                [instrument, sys.executable, "-c", "import sklearn.linear_model"], on),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for name, (cmd, env) in rows.items():  # warm the file cache
            _time(cmd, env)
        for _ in range(args.repeats):
            for name, (cmd, env) in rows.items():
                times[name].append(_time(cmd, env))
    med = {name: statistics.median(v) for name, v in times.items()}
    base_start = med["start-up: instrumentors disabled (baseline)"]
    base_import = med["import sklearn: instrumentors disabled (baseline)"]
    print(f"{'row':<52} {'median ms':>10} {'vs baseline':>12} {'added ms':>9}")
    for name, value in med.items():
        base = base_import if name.startswith("import") else base_start
        print(f"{name:<52} {value:>10.1f} {value / base:>11.2f}x {value - base:>9.1f}")
    added = med["start-up: instrumentors loaded"] - base_start
    verdict = "PASS" if added <= TARGET_MS else "FAIL"
    print(f"\nstart-up added by the instrumentors: {added:.1f} ms (target <= {TARGET_MS:.0f} ms): "
          f"{verdict}; {args.repeats} runs each, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
