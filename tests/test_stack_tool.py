"""tools/stack.py: progress during long builds, and a clear message for an old Go (issue 13, item 9)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stack():
    spec = importlib.util.spec_from_file_location("otel_ml_stack_tool", ROOT / "tools" / "stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_long_step_prints_a_heartbeat_with_elapsed_time_and_progress(stack, monkeypatch,
                                                                      capsys):
    monkeypatch.setattr(stack, "HEARTBEAT_S", 0.3)
    code = "import time\nfor i in range(3):\n    print(f'pkg/{i}', flush=True); time.sleep(0.4)"
    stack.run([sys.executable, "-c", code], what="fake build", unit="packages compiled")
    lines = capsys.readouterr().out.splitlines()
    beats = [line for line in lines if line.startswith("[stack]   ... fake build: ")]
    assert len(beats) >= 2, lines
    assert beats[0].endswith("packages compiled") and "s so far, " in beats[0]
    assert lines[-1].startswith("[stack]   ok in ")


def test_a_failing_step_reports_its_last_lines(stack):
    code = "import sys\nprint('compiling a'); print('error: b'); sys.exit(3)"
    with pytest.raises(stack.InstallError, match=r"exited 3\ncompiling a\nerror: b$"):
        stack.run([sys.executable, "-c", code], what="fake build")


@pytest.mark.parametrize("text, version", [
    ("go version go1.26.8 linux/amd64", (1, 26)),
    ("go version go1.19.8 linux/amd64", (1, 19)),
    ("go version devel go1.27-abc linux/amd64", (1, 27)),
    ("not go", None),
])
def test_go_version_is_read_from_go_version_output(stack, text, version):
    assert stack.go_version(text) == version
    assert stack.GO_MIN_VERSION == (1, 26)


def test_an_old_go_is_refused_with_the_version_needed(stack, tmp_path, monkeypatch):
    fake = tmp_path / "go"
    fake.write_text("#!/bin/sh\necho 'go version go1.19.8 linux/amd64'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(stack.InstallError, match=r"go1\.19\.8.*need Go >= 1\.26 \(Debian's "):
        stack.find_go()


def test_the_readme_says_which_go_next_to_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Two commands"):readme.index("## Quickstart")]
    assert "make test    # needs Go >= 1.26" in block
    assert "Go >= 1.26\nfor building the Collector and Jaeger" in block
