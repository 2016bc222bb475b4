"""``d2stream serve`` in a subprocess on a loopback port, for the remote-inference tests."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_helpers import free_port, subprocess_env, wait_until

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServeProcess:
    """A running server; ``url`` is its base URL. Restartable on the same port."""

    def __init__(self, model: Path, workdir: Path, name: str = "demo",
                 extra: tuple[str, ...] = (), token: str | None = None) -> None:
        self.model, self.workdir, self.name, self.extra = model, workdir, name, extra
        self.auth = {"Authorization": f"Bearer {token}"} if token else {}
        if token:
            self.extra = (*extra, "--token", token)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self, timeout: float = 180.0) -> None:
        args = [sys.executable, "-m", "daemon.cli.main", "serve", str(self.model), "--port",
                str(self.port), "--model-name", self.name, "--threads", "1", *self.extra]
        self.log = self.workdir / f"serve-{self.port}.log"
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen(args, env=subprocess_env(), stdout=err, stderr=err)
        if not wait_until(lambda: self.ready() or self.proc.poll() is not None, timeout) \
                or not self.ready():
            self.kill()
            pytest.fail(f"d2stream serve did not become ready:\n{self.log.read_text()}")

    def ready(self) -> bool:
        try:
            return get(f"{self.url}/v2/health/ready", self.auth)[0] == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    return request("GET", url, None, headers)


def request(method: str, url: str, body: bytes | None,
            headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with OPENER.open(req, timeout=120) as response:
            data = response.read()
            status = response.status
            length = response.headers.get("Inference-Header-Content-Length")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    if length is not None:
        return status, (data, int(length))
    return status, json.loads(data)
