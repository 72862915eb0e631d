"""Headless Chromium driven over the DevTools protocol: the Dagster UI is a React app, so a page is only checked
once its script has rendered the expected text (polled with Runtime.evaluate, bounded by a timeout)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from websockets.sync.client import ClientConnection, connect

FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1440,900",
    "--remote-debugging-port=0",
]


def chromium() -> str | None:
    """Debian's `chromium` package (`.ci/run` installs it); None where it is absent."""
    return shutil.which("chromium")


class Page:
    """One tab: navigate, read the rendered text, wait for it, screenshot it."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next = 0

    def call(self, method: str, **params: object) -> dict:
        self._next += 1
        self._ws.send(json.dumps({"id": self._next, "method": method, "params": params}))
        while True:  # events in between are not needed
            message = json.loads(self._ws.recv(timeout=30))
            if message.get("id") == self._next:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def text(self) -> str:
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def open(self, url: str, until: Callable[[str], bool], what: str, seconds: float = 30) -> str:
        """Go to url and return the page's text once `until(text)` holds; the last text is in the error otherwise."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + seconds
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if until(text):
                return text
            time.sleep(0.25)
        raise AssertionError(f"{url}: timed out after {seconds:.0f} s waiting for {what}; the page shows:\n{text}")

    def screenshot(self, path: Path) -> Path:
        time.sleep(0.5)  # the last fetches paint
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


@contextmanager
def browser(binary: str, profile: Path) -> Iterator[Page]:
    """Chromium on a fresh profile; its DevTools port is read back from the file it writes there."""
    profile.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            assert proc.poll() is None, f"{binary} exited with {proc.returncode} before opening DevTools"
            assert time.monotonic() < deadline, f"{binary} did not open DevTools within 30 s"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        page_ws = _page_socket(port)
        with connect(page_ws, max_size=None, open_timeout=30) as ws:
            page = Page(ws)
            page.call("Page.enable")
            page.call("Emulation.setDeviceMetricsOverride", width=1440, height=900, deviceScaleFactor=1, mobile=False)
            yield page
    finally:  # the whole group: the browser's renderer and utility processes too
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _page_socket(port: int) -> str:
    deadline = time.monotonic() + 30
    while True:
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        pages = [t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page"]
        if pages:
            return pages[0]
        assert time.monotonic() < deadline, "chromium opened no page"
        time.sleep(0.1)
