#!/usr/bin/env python3
"""Install the real observability stack used by the integration tests (stdlib only).

    python tools/stack.py install   # idempotent; exits non-zero naming what is missing and why
    python tools/stack.py paths     # JSON: {"otelcol": "/...", "jaeger": null, ...}

``install`` does these things, each skipped when already done (1b: the HTML report's browser
tests):

1. ``apt-get install -y prometheus prometheus-alertmanager`` when ``prometheus``, ``promtool`` or
   the Alertmanager binary (Debian: ``prometheus-alertmanager``) is missing; ``apt-get update`` runs
   first only when apt has no package lists yet or the install fails without it. Needs root.
1b. ``apt-get install -y chromium`` (Debian's Chromium, run headless by the report's browser
   tests) when no ``chromium`` is on ``PATH``. Needs root.
2. ``go build`` of the OpenTelemetry Collector distribution in ``collector/builder/`` into
   ``~/.cache/otel-ml/bin/otelcol-<hash of go.mod, go.sum, *.go>``.
3. ``go build`` of Jaeger v2 (``github.com/jaegertracing/jaeger/cmd/jaeger@v1.76.0``) in a scratch
   module under ``~/.cache/otel-ml/`` into ``~/.cache/otel-ml/bin/jaeger-v1.76.0``.

4. ``go build`` of the ``jsonnet`` command (``github.com/google/go-jsonnet/cmd/jsonnet``) that
   renders the monitoring mixin, into ``~/.cache/otel-ml/bin/jsonnet-v0.22.0``.

The builds need Go >= 1.26 (Debian's ``golang-go`` is older: see https://go.dev/dl/). They take
several minutes each on 2 cores; a progress line every 30 s says how long and how many packages
(``go build -v``) so far. Go's module and build caches stay at their defaults (outside the repository). The path logic lives
in ``tests/stack/binaries.py``; ``from tools.stack import find_binaries`` re-exports it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import re
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

_BINARIES_PY = Path(__file__).resolve().parents[1] / "tests" / "stack" / "binaries.py"


def _load_binaries_module():
    name = "otel_ml_stack_binaries"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _BINARIES_PY)
    if spec is None or spec.loader is None:  # pragma: no cover - file shipped with the repo
        raise ImportError(f"cannot load {_BINARIES_PY}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_binaries = _load_binaries_module()
Binaries = _binaries.Binaries
find_binaries = _binaries.find_binaries

__all__ = ["GO_MIN_VERSION", "HEARTBEAT_S", "Binaries", "InstallError", "find_binaries",
           "find_go", "go_version", "install", "main", "run"]
__all__ += ["JSONNET_VERSION", "build_jsonnet", "jsonnet_binary_path"]

#: The Collector and Jaeger modules need this Go release (their go.mod ``go`` lines).
GO_MIN_VERSION = (1, 26)
#: Seconds between progress lines while a long step runs.
HEARTBEAT_S = 30.0

APT_PACKAGES = ("prometheus", "prometheus-alertmanager")


class InstallError(RuntimeError):
    """A step of ``install`` failed; the message says what is missing and why."""


def _log(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        what: str, unit: str = "lines of output") -> None:
    """Run ``argv``; every ``HEARTBEAT_S`` seconds log the time and output lines so far.

    Raises:
        InstallError: The program is missing or exits non-zero (with its last 40 lines).
    """
    _log(f"$ {' '.join(argv)}" + (f"   (in {cwd})" if cwd else ""))
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError as exc:
        raise InstallError(f"{what}: {argv[0]} not found ({exc})") from exc
    tail: deque[str] = deque(maxlen=40)
    count = [0]

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            count[0] += 1

    reader = threading.Thread(target=read, name="stack-output", daemon=True)
    reader.start()
    while True:
        try:
            proc.wait(timeout=HEARTBEAT_S)
            break
        except subprocess.TimeoutExpired:
            _log(f"  ... {what}: {_elapsed(time.monotonic() - started)} so far, "
                 f"{count[0]} {unit}")
    reader.join(timeout=5)
    if proc.returncode != 0:
        raise InstallError(f"{what}: `{' '.join(argv)}` exited {proc.returncode}\n"
                           + "\n".join(tail))
    _log(f"  ok in {_elapsed(time.monotonic() - started)}")


def _elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def go_version(text: str) -> tuple[int, int] | None:
    """``(major, minor)`` from ``go version`` output (``go version go1.26.8 linux/amd64``)."""
    match = re.search(r"\bgo(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


# --------------------------------------------------------------------------- apt


def _apt_lists_present() -> bool:
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any(p.name.endswith("Packages") or "_Packages" in p.name
                                  for p in lists.iterdir())


def install_debian_packages() -> None:
    found = find_binaries()
    missing = [n for n in ("prometheus", "promtool", "alertmanager") if getattr(found, n) is None]
    if not missing:
        _log(f"prometheus/promtool/alertmanager present: {found.prometheus}, {found.promtool}, "
             f"{found.alertmanager}")
        return
    _log(f"missing {', '.join(missing)}: installing Debian packages {' '.join(APT_PACKAGES)}")
    if shutil.which("apt-get") is None:
        raise InstallError(f"{', '.join(missing)} missing and apt-get is not available: install "
                           f"the packages {' '.join(APT_PACKAGES)} (or put the binaries on PATH)")
    if os.geteuid() != 0:
        raise InstallError(f"{', '.join(missing)} missing: `apt-get install` needs root; run "
                           f"`sudo apt-get install -y {' '.join(APT_PACKAGES)}`")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
    if not _apt_lists_present():
        run(["apt-get", "update", "-q"], env=env, what="apt-get update")
    try:
        run(install, env=env, what="apt-get install")
    except InstallError:
        _log("install failed; refreshing package lists and retrying once")
        run(["apt-get", "update", "-q"], env=env, what="apt-get update")
        run(install, env=env, what="apt-get install")
    found = find_binaries()
    still = [n for n in ("prometheus", "promtool", "alertmanager") if getattr(found, n) is None]
    if still:
        raise InstallError(f"after installing {' '.join(APT_PACKAGES)}, still missing: "
                           f"{', '.join(still)} (looked on PATH for prometheus, promtool, "
                           f"{' or '.join(_binaries.ALERTMANAGER_NAMES)})")


# --------------------------------------------------------------------------- browser
#: Debian's headless-capable Chromium: the HTML report's browser tests open the page in it.
BROWSER_PACKAGES = ("chromium",)


def install_browser() -> None:
    """``apt-get install chromium`` when no Chromium is on PATH (tests/test_report_html.py)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        _log(f"chromium present: {found}")
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise InstallError("chromium missing: install the Debian package `chromium` (as root: "
                           "`apt-get install -y --no-install-recommends chromium`)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *BROWSER_PACKAGES]
    _log("chromium missing: installing the Debian package")
    if not _apt_lists_present():
        run(["apt-get", "update", "-q"], env=env, what="apt-get update")
    try:
        run(install, env=env, what="apt-get install chromium")
    except InstallError:
        run(["apt-get", "update", "-q"], env=env, what="apt-get update")
        run(install, env=env, what="apt-get install chromium")
    if not shutil.which("chromium"):
        raise InstallError("after installing chromium, `chromium` is still not on PATH")


# --------------------------------------------------------------------------- go builds


def find_go() -> str:
    go = shutil.which("go")
    need = ".".join(map(str, GO_MIN_VERSION))
    if go is None:
        raise InstallError("the `go` command is not on PATH: the Collector and Jaeger are built "
                           f"from Go modules (Go >= {need} needed: https://go.dev/dl/)")
    out = subprocess.run([go, "version"], capture_output=True, text=True).stdout
    found = go_version(out)
    if found is not None and found < GO_MIN_VERSION:
        raise InstallError(f"{out.strip()}: the Collector and Jaeger builds need Go >= {need} "
                           "(Debian's golang-go is older; https://go.dev/dl/)")
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never let a workspace file of the surrounding checkout leak into these builds.
    env["GOWORK"] = "off"
    return env


def _atomic_build(go: str, target: Path, cwd: Path, package: str, what: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        run([go, "build", "-v", "-ldflags=-s -w", "-o", str(tmp), package],
            cwd=cwd, env=_go_env(), what=what, unit="packages compiled")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def build_collector() -> Path:
    target = _binaries.collector_binary_path()
    if target.is_file():
        _log(f"collector present: {target}")
        return target
    builder = _binaries.BUILDER_DIR
    if not (builder / "go.mod").is_file():
        raise InstallError(f"collector build module missing: {builder}/go.mod")
    _log(f"building the OpenTelemetry Collector from {builder} (several minutes on 2 cores)")
    _atomic_build(find_go(), target, builder, ".", what="collector build")
    _log(f"collector built: {target}")
    return target


def build_jaeger() -> Path:
    target = _binaries.jaeger_binary_path()
    if target.is_file():
        _log(f"jaeger present: {target}")
        return target
    go = find_go()
    version = _binaries.JAEGER_VERSION
    scratch = _binaries.cache_dir() / f"jaeger-{version}"
    scratch.mkdir(parents=True, exist_ok=True)
    env = _go_env()
    _log(f"building Jaeger {version} (v2) in {scratch} (several minutes on 2 cores)")
    if not (scratch / "go.mod").is_file():
        run([go, "mod", "init", "otelml.invalid/jaegerbuild"], cwd=scratch, env=env,
            what="jaeger scratch module")
    go_mod = (scratch / "go.mod").read_text()
    if f"{_binaries.JAEGER_MODULE}" not in go_mod or version not in go_mod:
        run([go, "get", "-tool", f"{_binaries.JAEGER_MODULE}@{version}"], cwd=scratch, env=env,
            what=f"go get -tool {_binaries.JAEGER_MODULE}@{version}")
    _atomic_build(go, target, scratch, _binaries.JAEGER_MODULE, what="jaeger build")
    _log(f"jaeger built: {target}")
    return target


# --------------------------------------------------------------------------- jsonnet
#: The monitoring mixin (``mixin/``) is rendered with the Go ``jsonnet`` command.
JSONNET_MODULE = "github.com/google/go-jsonnet"
JSONNET_VERSION = "v0.22.0"


def jsonnet_binary_path() -> Path:
    """Where ``build_jsonnet`` puts the ``jsonnet`` command (``$OTEL_ML_JSONNET`` wins)."""
    override = os.environ.get("OTEL_ML_JSONNET")
    if override:
        return Path(override)
    return _binaries.bin_dir() / f"jsonnet-{JSONNET_VERSION}"


def build_jsonnet() -> Path:
    """``go build`` of ``github.com/google/go-jsonnet/cmd/jsonnet`` (about a minute), cached."""
    target = jsonnet_binary_path()
    if target.is_file():
        _log(f"jsonnet present: {target}")
        return target
    go = find_go()
    scratch = _binaries.cache_dir() / f"jsonnet-{JSONNET_VERSION}"
    scratch.mkdir(parents=True, exist_ok=True)
    env = _go_env()
    _log(f"building jsonnet {JSONNET_VERSION} in {scratch}")
    if not (scratch / "go.mod").is_file():
        run([go, "mod", "init", "otelml.invalid/jsonnetbuild"], cwd=scratch, env=env,
            what="jsonnet scratch module")
    if JSONNET_VERSION not in (scratch / "go.mod").read_text():
        run([go, "get", "-tool", f"{JSONNET_MODULE}/cmd/jsonnet@{JSONNET_VERSION}"],
            cwd=scratch, env=env, what=f"go get -tool {JSONNET_MODULE}@{JSONNET_VERSION}")
    _atomic_build(go, target, scratch, f"{JSONNET_MODULE}/cmd/jsonnet", what="jsonnet build")
    _log(f"jsonnet built: {target}")
    return target


# --------------------------------------------------------------------------- entry points


def install() -> Binaries:
    """Install everything (idempotent) and return the resolved paths; raises InstallError."""
    started = time.monotonic()
    errors: list[str] = []
    for step in (install_debian_packages, install_browser, build_collector, build_jaeger,
                 build_jsonnet):
        try:
            step()
        except InstallError as exc:  # keep going: report every missing piece at once
            errors.append(str(exc))
            _log(f"FAILED: {exc}")
    found = find_binaries()
    if errors or found.missing():
        details = "\n\n".join(errors) or "(no step failed, yet binaries are not found)"
        raise InstallError(f"stack install incomplete; missing: {', '.join(found.missing())}\n\n"
                           f"{details}")
    _log(f"stack installed in {time.monotonic() - started:.0f}s")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="install/build every stack program (idempotent)")
    sub.add_parser("paths", help="print the binaries' paths as JSON (null where missing)")
    args = parser.parse_args(argv)
    if args.command == "paths":
        print(json.dumps(find_binaries().as_dict(), indent=2))
        return 0
    try:
        found = install()
    except InstallError as exc:
        print(f"[stack] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(found.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
