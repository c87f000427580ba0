"""The otel-ml command line: version, usage errors, profile, report, demo; exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from otel_ml import __version__
from otel_ml.cli import EXIT_DRIFT, EXIT_INPUT, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed console script the way a user does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_ML_SYSTEM_METRICS"] = "false"
    exe = Path(sys.executable).with_name("otel-ml")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "otel_ml.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def test_version():
    proc = cli("--version")
    assert proc.returncode == EXIT_OK
    assert proc.stdout.strip() == f"otel-ml {__version__}"


def test_help_lists_commands_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("profile", "report", "demo", "exit codes:", "3    input error"):
        assert word in out


@pytest.mark.parametrize("argv, message", [
    ([], "COMMAND"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["demo", "--rate", "0"], "argument --rate: must be > 0"),
    (["demo", "--rate", "fast"], "'fast' is not a number"),
    (["demo", "--duration", "-1"], "argument --duration: must be >= 0"),
    (["demo", "--unknown"], "unrecognized arguments: --unknown"),
    (["report", "ref.json"], "the following arguments are required: DATA"),
    (["profile", "data.csv"], "the following arguments are required: -o/--output"),
])
def test_usage_errors_exit_2_with_a_message(argv, message, capsys):
    code = None
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == EXIT_USAGE
    assert message in capsys.readouterr().err
