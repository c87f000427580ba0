"""Virtual environments for the peer tools the benchmark compares against.

Evidently, NannyML, alibi-detect and whylogs pin pandas/numpy/scipy differently, so each lives in
its own virtual environment under ``~/.cache/otel-ml/bench-venvs/<peer>`` (outside the repository)
and its part of the benchmark runs there as a subprocess script that prints one JSON object.

    python benchmarks/peers.py            # create / update every peer venv, print a status line each
    python benchmarks/peers.py whylogs    # just one
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PEERS", "Peer", "ensure", "status", "venv_dir", "venv_python"]

ROOT = Path(os.environ.get("OTEL_ML_BENCH_VENVS", Path.home() / ".cache/otel-ml/bench-venvs"))


@dataclass(frozen=True)
class Peer:
    """One peer tool: its venv name, what pip installs into it, and the module that proves it works."""

    name: str
    requirements: tuple[str, ...]
    probe: str  # import statement whose success means the venv is usable
    version_of: str  # distribution name whose version the table reports


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        # evidently 0.7 imports a pandas function that pandas 3 removed.
        Peer("evidently", ("evidently>=0.7,<0.8", "pandas<3", "psutil"),
             "from evidently.presets import DataDriftPreset", "evidently"),
        # nannyml 0.13 imports statsmodels without declaring it; it predates pandas 3.
        Peer("nannyml", ("nannyml>=0.13,<0.14", "statsmodels", "pandas<3", "psutil"),
             "import nannyml", "nannyml"),
        Peer(
            "alibi-detect",
            ("alibi-detect>=0.13,<0.14", "psutil"),
            "from alibi_detect.cd import KSDrift",
            "alibi-detect",
        ),
        Peer("whylogs", ("whylogs>=1.6,<1.7", "pandas", "psutil"), "import whylogs", "whylogs"),
    )
}


def venv_dir(name: str) -> Path:
    """Directory of a peer's virtual environment."""
    return ROOT / name


def venv_python(name: str) -> Path:
    """Interpreter of a peer's virtual environment."""
    return venv_dir(name) / "bin" / "python"


def _log_path(name: str) -> Path:
    return ROOT / f"{name}.install.log"


def status(name: str) -> dict:
    """Whether a peer's venv imports, its version, or the reason it is unusable.

    Returns:
        ``{"ok": bool, "version": str | None, "reason": str | None}``.
    """
    peer = PEERS[name]
    py = venv_python(name)
    if not py.exists():
        return {"ok": False, "version": None, "reason": "venv not created (run benchmarks/peers.py)"}
    code = (
        f"{peer.probe}\nimport importlib.metadata as m, json\n"
        f"print(json.dumps(m.version({peer.version_of!r})))"
    )
    proc = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["import failed"])[-1]
        failed = _log_path(name).with_suffix(".failed")
        reason = failed.read_text().strip() if failed.exists() else tail
        return {"ok": False, "version": None, "reason": reason[:300]}
    return {"ok": True, "version": json.loads(proc.stdout.strip().splitlines()[-1]), "reason": None}


def ensure(name: str, python: str = sys.executable) -> dict:
    """Create the peer's venv if missing and pip install its requirements; return `status`.

    An install failure is recorded (``<name>.install.failed`` next to the venv, with pip's last
    error line) so that the table can say why the peer was skipped.
    """
    peer = PEERS[name]
    ROOT.mkdir(parents=True, exist_ok=True)
    st = status(name)
    if st["ok"]:
        return st
    d = venv_dir(name)
    log = _log_path(name)
    failed = log.with_suffix(".failed")
    failed.unlink(missing_ok=True)
    steps = [[str(venv_python(name)), "-m", "pip", "install", *peer.requirements]]
    if not venv_python(name).exists():  # otherwise repair in place: pip settles the pins
        if d.exists():
            shutil.rmtree(d)
        steps[:0] = [[python, "-m", "venv", str(d)],
                     [str(venv_python(name)), "-m", "pip", "install", "-q", "-U", "pip"]]
    with log.open("a") as fh:
        for cmd in steps:
            fh.write(f"$ {' '.join(cmd)}\n")
            fh.flush()
            rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
            if rc != 0:
                break
    if rc != 0:
        lines = [ln for ln in log.read_text().splitlines() if "error" in ln.lower()]
        failed.write_text(f"pip install failed: {(lines or ['see ' + str(log)])[-1]}")
    return status(name)


def main(argv: list[str]) -> int:
    names = argv or list(PEERS)
    for name in names:
        st = ensure(name)
        print(f"{name:14s} {'ok ' + st['version'] if st['ok'] else 'FAILED: ' + str(st['reason'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
