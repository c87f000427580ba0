"""Where the observability stack's programs live (stdlib only).

The one copy of the path logic shared by ``tools/stack.py`` (which installs/builds the programs)
and ``tests/stack/harness.py`` (which runs them).

* Prometheus, promtool and Alertmanager come from Debian packages (``prometheus``,
  ``prometheus-alertmanager``): found on ``PATH``. Debian names the Alertmanager binary
  ``prometheus-alertmanager``; upstream's ``alertmanager`` name is accepted too.
* The OpenTelemetry Collector is built from ``collector/builder/`` into
  ``<cache>/bin/otelcol-<hash>``, where the hash covers that directory's ``go.mod``, ``go.sum`` and
  ``*.go`` files: changing a component version or the component list yields a new binary name,
  so a stale build is never picked up.
* Jaeger v2 is built from ``github.com/jaegertracing/jaeger/cmd/jaeger@JAEGER_VERSION`` into
  ``<cache>/bin/jaeger-<version>``.

``<cache>`` is ``$OTEL_ML_CACHE_DIR`` or ``~/.cache/otel-ml``. Each binary can be overridden with an
environment variable (``OTEL_ML_OTELCOL_BIN``, ``OTEL_ML_JAEGER_BIN``, ``OTEL_ML_PROMETHEUS_BIN``,
``OTEL_ML_PROMTOOL_BIN``, ``OTEL_ML_ALERTMANAGER_BIN``) naming an executable file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Optional

__all__ = [
    "ALERTMANAGER_NAMES",
    "BUILDER_DIR",
    "Binaries",
    "JAEGER_MODULE",
    "JAEGER_VERSION",
    "REPO_ROOT",
    "bin_dir",
    "cache_dir",
    "collector_binary_path",
    "collector_build_hash",
    "find_binaries",
    "jaeger_binary_path",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILDER_DIR = REPO_ROOT / "collector" / "builder"

JAEGER_MODULE = "github.com/jaegertracing/jaeger/cmd/jaeger"
JAEGER_VERSION = "v1.76.0"  # Jaeger v2.13.0 (the v1.x tag of the same release)

# Debian 12/13 install Alertmanager as prometheus-alertmanager; upstream calls it alertmanager.
ALERTMANAGER_NAMES = ("prometheus-alertmanager", "alertmanager")


def cache_dir() -> Path:
    """Root of the build cache (``$OTEL_ML_CACHE_DIR`` or ``~/.cache/otel-ml``)."""
    override = os.environ.get("OTEL_ML_CACHE_DIR")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "otel-ml"


def bin_dir() -> Path:
    return cache_dir() / "bin"


def collector_build_hash(builder_dir: Path = BUILDER_DIR) -> str:
    """Short sha256 over ``go.mod``, ``go.sum`` and ``*.go`` in the builder module (names and bytes)."""
    files = [builder_dir / "go.mod", builder_dir / "go.sum", *sorted(builder_dir.glob("*.go"))]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def collector_binary_path(builder_dir: Path = BUILDER_DIR) -> Path:
    return bin_dir() / f"otelcol-{collector_build_hash(builder_dir)}"


def jaeger_binary_path() -> Path:
    return bin_dir() / f"jaeger-{JAEGER_VERSION}"


@dataclasses.dataclass(frozen=True)
class Binaries:
    """Absolute paths of the stack's programs; ``None`` where one is missing."""

    otelcol: Optional[str]
    jaeger: Optional[str]
    prometheus: Optional[str]
    promtool: Optional[str]
    alertmanager: Optional[str]

    def missing(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is None]

    def as_dict(self) -> dict[str, Optional[str]]:
        return dataclasses.asdict(self)


def _executable(path: Path) -> Optional[str]:
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def _resolve(env_var: str, default: Optional[str]) -> Optional[str]:
    override = os.environ.get(env_var)
    if override:
        return _executable(Path(override).expanduser())
    return default


def _which(*names: str) -> Optional[str]:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def find_binaries() -> Binaries:
    """Locate every program; never builds or installs anything (``tools/stack.py install`` does)."""
    return Binaries(
        otelcol=_resolve("OTEL_ML_OTELCOL_BIN", _executable(collector_binary_path())),
        jaeger=_resolve("OTEL_ML_JAEGER_BIN", _executable(jaeger_binary_path())),
        prometheus=_resolve("OTEL_ML_PROMETHEUS_BIN", _which("prometheus")),
        promtool=_resolve("OTEL_ML_PROMTOOL_BIN", _which("promtool")),
        alertmanager=_resolve("OTEL_ML_ALERTMANAGER_BIN", _which(*ALERTMANAGER_NAMES)),
    )
