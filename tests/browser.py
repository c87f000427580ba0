"""Debian's headless Chromium, driven over the Chrome DevTools protocol, for the report tests.

A page is opened in a fresh browser (its own profile directory, a free debugging port chosen by
Chromium, loopback only); every console message, uncaught exception, log entry and network
request of the page is recorded from the protocol's events, so a test can fail on any of them.
The client is ``websocket-client`` (a dev dependency): one connection to the page target, one
request at a time, events buffered in between.

    with Browser.start(tmp_path) as browser:
        visit = browser.open(Path("report.html").resolve().as_uri())
        assert not visit.console_errors and not visit.requests
        visit.screenshot(tmp_path / "report.png")
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Browser", "Visit", "find_chromium"]

#: Overrides the browser binary (an executable path).
CHROMIUM_ENV = "OTEL_ML_CHROMIUM_BIN"
_NAMES = ("chromium", "chromium-browser", "google-chrome")
_LISTENING = re.compile(r"DevTools listening on (ws://[^\s]+)")


def find_chromium() -> str | None:
    """The Chromium binary: ``$OTEL_ML_CHROMIUM_BIN``, else ``chromium`` on ``PATH``."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        return override if os.access(override, os.X_OK) else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Visit:
    """What one page load did.

    Attributes:
        url: The page's URL.
        console_errors: Console errors and warnings of level error, uncaught exceptions and
            error log entries (CSP violations, failed loads), as text.
        requests: URLs of every network request after the page's own document.
        console: Every console message, ``(level, text)``.
    """

    url: str
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    session: Any = None

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (by value)."""
        result = self.session.call("Runtime.evaluate", expression=expression,
                                   returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, *, width: int = 1280, height: int | None = None) -> Path:
        """A PNG of the page at ``width`` CSS pixels: the whole page, or its top ``height``."""
        # Lay the page out at ``width`` first: its height depends on it.
        self.session.call("Emulation.setDeviceMetricsOverride", width=width, height=800,
                          deviceScaleFactor=1, mobile=False)
        metrics = self.session.call("Page.getLayoutMetrics")
        full = int(metrics.get("cssContentSize", metrics["contentSize"])["height"])
        h = min(full, height) if height else full
        self.session.call("Emulation.setDeviceMetricsOverride", width=width, height=h,
                          deviceScaleFactor=1, mobile=False)
        data = self.session.call("Page.captureScreenshot", format="png",
                                 captureBeyondViewport=True,
                                 clip={"x": 0, "y": 0, "width": width, "height": h, "scale": 1})
        path.write_bytes(base64.b64decode(data["data"]))
        return path


class _Session:
    """One DevTools websocket: requests by id, events kept in order."""

    def __init__(self, ws_url: str, timeout: float) -> None:
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self.timeout = timeout
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"no answer to {method} in {self.timeout:g} s")

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        """Read events until ``event`` arrives (it and everything before it are kept)."""
        for seen in self.events:
            if seen["method"] == event:
                return seen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if "method" in message:
                self.events.append(message)
                if message["method"] == event:
                    return message
        raise TimeoutError(f"no {event} in {timeout:g} s")

    def drain(self, seconds: float) -> None:
        """Keep reading events for ``seconds`` (late console messages, late requests)."""
        import websocket

        end = time.monotonic() + seconds
        self.ws.settimeout(0.1)
        try:
            while time.monotonic() < end:
                try:
                    message = json.loads(self.ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if "method" in message:
                    self.events.append(message)
        finally:
            self.ws.settimeout(self.timeout)

    def close(self) -> None:
        self.ws.close()


class Browser:
    """A headless Chromium process with its debugging port on loopback."""

    def __init__(self, process: subprocess.Popen, port: int, stderr: list[str]) -> None:
        self.process = process
        self.port = port
        self.stderr = stderr

    @classmethod
    @contextmanager
    def start(cls, profile_dir: Path, *, timeout: float = 60.0) -> Iterator[Browser]:
        """Start Chromium with a fresh profile under ``profile_dir``; stopped on exit."""
        binary = find_chromium()
        if binary is None:
            raise FileNotFoundError("chromium not found (apt-get install chromium, or set "
                                    f"{CHROMIUM_ENV})")
        profile = profile_dir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-extensions", "--disable-sync", "--mute-audio",
                "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                f"--user-data-dir={profile}", "about:blank"]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True, start_new_session=True)
        lines: list[str] = []
        found = threading.Event()
        url: list[str] = []

        def read() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                lines.append(line.rstrip())
                match = _LISTENING.search(line)
                if match and not found.is_set():
                    url.append(match.group(1))
                    found.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            if not found.wait(timeout):
                raise TimeoutError("chromium did not open its debugging port in "
                                   f"{timeout:g} s:\n" + "\n".join(lines[-20:]))
            port = int(re.search(r":(\d+)/", url[0]).group(1))  # type: ignore[union-attr]
            yield cls(process, port, lines)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def open(self, url: str, *, timeout: float = 60.0, settle_s: float = 0.5) -> Visit:
        """Load ``url`` in the browser's page and record what it did."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        session = _Session(page["webSocketDebuggerUrl"], timeout)
        for domain in ("Page", "Runtime", "Log", "Network"):
            session.call(f"{domain}.enable")
        session.events.clear()  # about:blank's own events
        session.call("Page.navigate", url=url)
        session.wait_for("Page.loadEventFired", timeout)
        session.drain(settle_s)
        return _visit(url, session)


def _visit(url: str, session: _Session) -> Visit:
    visit = Visit(url, session=session)
    document_seen = False
    for event in session.events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            visit.console.append((params["type"], text))
            if params["type"] in ("error", "assert"):
                visit.console_errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            visit.console_errors.append(f"exception: {params['exceptionDetails']}")
        elif method == "Log.entryAdded":
            entry = params["entry"]
            visit.console.append((entry["level"], entry.get("text", "")))
            if entry["level"] == "error":
                visit.console_errors.append(f"log: {entry.get('text', '')} {entry.get('url', '')}")
        elif method == "Network.requestWillBeSent":
            request_url = params["request"]["url"]
            if request_url == url and params.get("type") == "Document" and not document_seen:
                document_seen = True  # the page itself
                continue
            visit.requests.append(request_url)
    return visit
