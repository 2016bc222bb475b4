"""Headless Chromium driven over the DevTools protocol (websocket-client): navigate, evaluate
JavaScript, click at a point, take a screenshot."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from itertools import count
from pathlib import Path
from typing import Any

import websocket

from tests.daemon.daemon_helpers import free_port, require_program, wait_until


class Browser:
    def __init__(self, profile: Path, size: tuple[int, int] = (1024, 900)) -> None:
        chromium = require_program("chromium", "chromium-browser", "google-chrome")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
             f"--remote-debugging-port={self.port}", f"--user-data-dir={profile}",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        page = wait_until(self._page, 60, 0.2)
        assert page, "chromium did not open its DevTools port"
        self.ws = websocket.create_connection(page, timeout=60, suppress_origin=True)
        self._ids = count(1)

    def _page(self) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list",
                                        timeout=2) as r:
                pages = [p for p in json.load(r) if p.get("type") == "page"]
        except OSError:
            return None
        return pages[0]["webSocketDebuggerUrl"] if pages else None

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == ident:
                assert "error" not in message, message
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def navigate(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(20)
