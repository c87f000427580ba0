"""The otel-ml command line: version, usage errors, profile, report, demo; exit codes."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from otel_ml import __version__
from otel_ml.cli import EXIT_BROKEN_PIPE, EXIT_DRIFT, EXIT_INPUT, EXIT_OK, EXIT_USAGE, main

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


# ---------------------------------------------------------------------------- profile / report
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    pd = pytest.importorskip("pandas")
    tmp_path = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    n = 4000
    pd.DataFrame({"a": rng.normal(0, 1, n), "b": rng.normal(5, 2, n),
                  "c": rng.choice(["x", "y", "z"], n), "pred": rng.integers(0, 2, n),
                  "id": np.arange(n)}).to_csv(tmp_path / "train.csv", index=False)
    shifted = pd.DataFrame({"a": rng.normal(0.5, 1, n), "b": rng.normal(5, 2, n),
                            "c": rng.choice(["x", "y", "w"], n), "pred": rng.integers(0, 2, n),
                            "id": np.arange(n)})
    shifted.loc[:99, "b"] = np.nan
    shifted.to_csv(tmp_path / "shifted.csv", index=False)
    pd.read_csv(tmp_path / "train.csv").iloc[:1500].to_csv(tmp_path / "same.csv", index=False)
    pd.DataFrame({"p": [1.0], "q": [2.0]}).to_csv(tmp_path / "other.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "broken.json").write_text('{"format": "otel_ml._internal.reference.profile", ')
    return tmp_path


@pytest.fixture(scope="module")
def ref(data_dir) -> Path:
    d = data_dir
    proc = cli("profile", str(d / "train.csv"), "-o", str(d / "ref.json"), "--predictions",
               "pred", "--exclude", "id", "--categorical", "c")
    assert proc.returncode == EXIT_OK, proc.stderr
    return d / "ref.json"


def test_profile_writes_a_reference_without_raw_rows(data_dir, ref):
    from otel_ml import Reference

    ref_path = ref
    proc_out = cli("profile", str(data_dir / "train.csv"), "-o", str(data_dir / "r2.json"))
    assert proc_out.stdout.startswith(f"wrote {data_dir / 'r2.json'}: 4000 rows, 5 features")
    ref = Reference.load(ref_path)
    assert ref.feature_names == ("a", "b", "c") and ref.rows == 4000
    assert ref.prediction is not None
    text = ref_path.read_text()
    train = (data_dir / "train.csv").read_text().splitlines()[1]
    assert train.split(",")[0] not in text  # no raw value of the first row


def test_report_table_and_json_flag_the_drifted_features(data_dir, ref):
    proc = cli("report", str(ref), str(data_dir / "shifted.csv"), "--predictions", "pred")
    assert proc.returncode == EXIT_OK, proc.stderr
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()
             if len(line.split()) > 2 and line.split()[1] in ("numeric", "categorical")}
    assert lines["a"].endswith("DRIFT") and lines["c"].endswith("DRIFT")
    assert lines["b"].endswith("no") and lines["(predictions)"].endswith("no")
    assert "drifted: a, c" in proc.stdout
    assert re.search(r"^  c +unseen_category +[0-9,]+$", proc.stdout, re.M)
    proc = cli("report", str(ref), str(data_dir / "shifted.csv"), "--predictions", "pred",
               "--json", "--fail-on-drift")
    assert proc.returncode == EXIT_DRIFT
    body = json.loads(proc.stdout)
    assert body["rows"] == 4000 and body["drifted"] is True
    assert body["drifted_features"] == ["a", "c"] and body["prediction_drifted"] is False
    quality = {(q["feature"], q["check"]): q["count"] for q in body["data_quality"]}
    assert quality[("b", "missing")] == 100
    assert quality[("c", "unseen_category")] > 1000
    assert body["drift"]["features"]["a"]["drifted"] is True


def test_report_on_data_like_the_reference_passes_the_gate(data_dir, ref):
    proc = cli("report", str(ref), str(data_dir / "same.csv"), "--predictions", "pred",
               "--fail-on-drift")
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("no drift")


@pytest.mark.parametrize("args, message", [
    (["profile", "{d}/missing.csv", "-o", "{d}/x.json"], "data file '{d}/missing.csv' does not exist"),
    (["profile", "{d}/empty.csv", "-o", "{d}/x.json"], "empty.csv: the file is empty"),
    (["profile", "{d}/train.csv", "-o", "{d}/x.json", "--predictions", "nope"], "'nope'"),
    (["report", "{d}/broken.json", "{d}/same.csv"], "broken.json: not valid JSON"),
    (["report", "{d}/missing.json", "{d}/same.csv"], "reference '{d}/missing.json' does not exist"),
    (["report", "{ref}", "{d}/other.csv"], "none of the reference's features are in the file"),
    (["report", "{ref}", "{d}/same.csv", "--predictions", "nope"], "no column 'nope'"),
    (["report", "{ref}", "{d}/train.txt"], "does not exist"),
])
def test_input_errors_exit_3_naming_the_file(data_dir, ref, args, message):
    fill = {"d": str(data_dir), "ref": str(ref)}
    proc = cli(*[a.format(**fill) for a in args])
    assert proc.returncode == EXIT_INPUT, proc.stdout + proc.stderr
    assert message.format(**fill) in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- demo
def test_demo_command_runs_the_phases_and_prints_a_summary():
    pytest.importorskip("sklearn")
    proc = cli("demo", "--duration", "3", "--rate", "200", "--no-live", "--seed", "1")
    assert proc.returncode == EXIT_OK, proc.stderr
    out = proc.stdout
    assert out.count("phase=") >= 3
    assert "otel-ml demo finished after" in out
    for phase in ("normal", "drift", "new-source", "error-burst", "recovery"):
        assert f"\n  {phase:<11} from" in out
    assert proc.stderr == ""  # no warning above the view (issue 13)
    assert max(len(line) for line in out.splitlines()) <= 100


def test_ctrl_c_ends_the_demo_cleanly_with_a_summary():
    pytest.importorskip("sklearn")
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_ML_SYSTEM_METRICS"] = "false"
    proc = subprocess.Popen([sys.executable, "-m", "otel_ml.cli", "demo", "--duration", "0",
                             "--no-live"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        first = proc.stdout.readline()  # the first refresh line: the loop is running
        assert "phase=normal" in first or time.monotonic() > deadline
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_OK, err
    assert "otel-ml demo interrupted after" in out
    assert "\n  normal      from" in out
    assert "Traceback" not in err


# ---------------------------------------------------------------------------- a closed pipe
@pytest.mark.parametrize("args", [
    ["profile", "{d}/train.csv", "-o", "{d}/pipe.json"],
    ["report", "{ref}", "{d}/shifted.csv", "--predictions", "pred"],
    ["report", "{ref}", "{d}/shifted.csv", "--predictions", "pred", "--json"],
    ["demo", "--no-live", "--duration", "2", "--rate", "100"],
], ids=lambda a: " ".join(a[:2]))
def test_output_closed_early_ends_quietly_with_141(data_dir, ref, args):
    """``otel-ml ... | head -1``: no traceback, no "internal error" (issue 13, item 4).

    (``--help`` and ``--version`` were already quiet: argparse ignores a failed write.)
    """
    if args[0] == "demo":
        pytest.importorskip("sklearn")
    fill = {"d": str(data_dir), "ref": str(ref)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_ML_SYSTEM_METRICS"] = "false"
    proc = subprocess.Popen([sys.executable, "-m", "otel_ml.cli", *[a.format(**fill) for a in args]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    proc.stdout.close()  # the reader is gone before the first line is written
    _, err = proc.communicate(timeout=120)
    assert err.decode() == ""
    assert proc.returncode == EXIT_BROKEN_PIPE


def test_help_documents_the_closed_pipe_exit_code(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "141  standard output closed early" in capsys.readouterr().out


# ---------------------------------------------------------------------------- a gate that checks
@pytest.fixture(scope="module")
def bad_files(data_dir) -> Path:
    pd = pytest.importorskip("pandas")
    train = pd.read_csv(data_dir / "train.csv")
    train[["a", "pred", "id"]].to_csv(data_dir / "lacks.csv", index=False)
    text = train.iloc[:500].copy()
    text["b"] = "unknown"
    text.to_csv(data_dir / "text.csv", index=False)
    lines = (data_dir / "same.csv").read_text().splitlines()
    lines[7] = ",".join(lines[7].split(",")[:3])  # a short row: pandas reads it padded
    (data_dir / "ragged.csv").write_text("\n".join(lines) + "\n")
    return data_dir


@pytest.mark.parametrize("name, message, allow", [
    ("lacks.csv", "lacks 2 of the reference's 3 features (b, c); --allow-missing-columns",
     "--allow-missing-columns"),
    ("text.csv", "no valid value in b (type_mismatch 500): drift cannot be checked; "
                 "--allow-empty-columns", "--allow-empty-columns"),
    ("ragged.csv", "ragged.csv: line 8 has 3 fields, the header has 5; --allow-ragged-rows",
     "--allow-ragged-rows"),
])
def test_the_drift_gate_refuses_data_it_could_not_check(bad_files, ref, name, message, allow):
    """Exit 3 and one line, not ``no drift`` and 0 (issue 13, item 5); the flag opts out."""
    args = ["report", str(ref), str(bad_files / name), "--predictions", "pred",
            "--fail-on-drift"]
    proc = cli(*args)
    assert proc.returncode == EXIT_INPUT, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    proc = cli(*args, allow)
    assert proc.returncode in (EXIT_OK, EXIT_DRIFT), proc.stderr
    assert "drift" in proc.stdout


def test_the_explanation_prints_the_digits_that_make_its_comparison_true(tmp_path):
    """``wasserstein 0.1 < 0.1`` was printed for 0.09998 < 0.1 (issue 13, item 5)."""
    pd = pytest.importorskip("pandas")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    import otel_ml

    rng = np.random.default_rng(0)
    train, base = rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)
    reference = otel_ml.Reference.from_data({"a": train})

    def wasserstein(shift: float) -> float:
        monitor = otel_ml.ModelMonitor("digits", "1", reference=reference, drift_window_s=1e9,
                                       slot_s=1e9, meter_provider=MeterProvider(),
                                       tracer_provider=TracerProvider())
        monitor.observe({"a": base + shift})
        monitor.flush()
        score = monitor.drift_report().features["a"].scores["wasserstein"]
        monitor.close()
        return score

    lo, hi = 0.0, 0.3  # bisect to a score just below the 0.1 minimum, where .3g shows 0.1
    for _ in range(60):
        shift = (lo + hi) / 2
        score = wasserstein(shift)
        if 0.0995 <= score < 0.1:
            break
        lo, hi = (shift, hi) if score < 0.0995 else (lo, shift)
    assert 0.0995 <= score < 0.1
    reference.save(tmp_path / "ref.json")
    pd.DataFrame({"a": base + shift}).to_csv(tmp_path / "near.csv", index=False)
    proc = cli("report", str(tmp_path / "ref.json"), str(tmp_path / "near.csv"), "--json")
    assert proc.returncode == EXIT_OK, proc.stderr
    body = json.loads(proc.stdout)
    reason = body["drift"]["features"]["a"]["reason"]
    match = re.search(r"wasserstein (\S+) < (\S+)$", reason)
    assert match and float(match[1]) < float(match[2]), reason
    match = re.search(r"p=(\S+) (<=|>) (\S+),", reason)
    assert match, reason
    p, op, alpha = float(match[1]), match[2], float(match[3])
    assert (p <= alpha) if op == "<=" else (p > alpha)
    # The table shows the thresholds the explanation used, with the same digits.
    assert body["decision"]["numeric"]["min_effect"] == 0.1
    table = cli("report", str(tmp_path / "ref.json"), str(tmp_path / "near.csv")).stdout
    assert f"p <= {body['decision']['alpha_per_test']:.3g} (alpha" in table
    assert "(wasserstein 0.1, jensen_shannon 0.04)" in table
