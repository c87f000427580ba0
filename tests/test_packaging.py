"""The package builds quietly: SPDX license metadata, no setuptools deprecation warnings.

Issue 13, item 3: ``project.license`` as a table and the license classifier made setuptools
print ~120 lines of ``BuildBackendWarning`` above the live demo on every ``make demo``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_declares_an_spdx_license_and_a_setuptools_that_reads_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "Apache-2.0"
    assert project["project"]["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert not [c for c in project["project"]["classifiers"] if c.startswith("License ::")]
    # PEP 639 support (license expressions, license-files) arrived in setuptools 77.
    assert project["build-system"]["requires"] == ["setuptools>=77"]


@pytest.mark.slow
def test_the_wheel_builds_without_warnings_and_carries_the_license(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v",
         "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    output = out.stdout + out.stderr
    assert out.returncode == 0, output[-3000:]
    assert "Warning" not in output, [line for line in output.splitlines() if "Warning" in line]
    (wheel,) = tmp_path.glob("otel_ml-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert b"License-Expression: Apache-2.0" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "otel_ml/_internal/report/report.html.j2" in names  # the HTML report's template
