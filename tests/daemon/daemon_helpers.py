"""Helpers for the camera-daemon tests: configs, a ``d2stream run`` subprocess, polling."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SYSTEM_DEPS_HINT = "install the test system packages with: bash .ci/system-deps.sh"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_program(*names: str) -> str:
    """Path of the first program found (also in /usr/sbin), or a failing test saying so."""
    for name in names:
        found = shutil.which(name) or next(
            (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()),
            None)
        if found:
            return found
    pytest.fail(f"{' or '.join(names)} not found: {SYSTEM_DEPS_HINT}", pytrace=False)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; returns it, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def daemon_config(model_path: Path, video: Path, **sections: Any) -> dict[str, Any]:
    """A daemon config dict: one camera ``cam`` reading ``video``; ``sections`` are merged."""
    config: dict[str, Any] = {
        "model": {"path": str(model_path), "num_threads": 2, "min_score": 0.5},
        "cameras": [{"name": "cam", "source": {"type": "opencv", "url": str(video),
                                               "realtime": False}}],
        "events": {"min_score": 0.5},
        "outputs": {"event_log": {"path": "events.jsonl", "fsync": "always"}},
        "service": {"stop_timeout_s": 20},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = _merge(config[key], value)
        else:
            config[key] = value
    return config


def looping_camera(video: Path) -> dict[str, Any]:
    """Camera ``cam`` playing ``video`` over and over at its own frame rate, like a live one."""
    return {"name": "cam",
            "source": {"type": "opencv", "url": str(video), "loop": True, "realtime": True}}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON-lines file, asserting each is a complete JSON object."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path}: last line is not terminated"
    return [json.loads(line) for line in text.splitlines()]


def subprocess_env(extra: dict[str, str] | None = None, pythonpath: list[str] | None = None
                   ) -> dict[str, str]:
    """The environment for a ``d2stream`` child: this repository first on ``PYTHONPATH``, then
    what this process was given there (the aarch64 run's wheel folder, for one)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*(pythonpath or []), str(REPO_ROOT), *inherited])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class DaemonProcess:
    """``d2stream run --config FILE`` in a subprocess; output goes to files in ``workdir``."""

    def __init__(self, config: Path, workdir: Path, env: dict[str, str] | None = None,
                 stats: bool = True) -> None:
        self.workdir = workdir
        self.stdout_path = workdir / "daemon.stdout"
        self.stderr_path = workdir / "daemon.stderr"
        self.stats_path = workdir / "stats.json"
        args = [sys.executable, "-m", "daemon.cli.main", "run", "--config", str(config)]
        if stats:
            args += ["--stats-json", str(self.stats_path)]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(args, cwd=workdir, env=env or subprocess_env(),
                                         stdout=out, stderr=err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> bool:
        return bool(wait_until(lambda: text in self.stderr() or self.proc.poll() is not None
                               and text in self.stderr(), timeout)) and text in self.stderr()

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"d2stream run did not exit within {timeout}s; stderr:\n{self.stderr()}")

    def terminate(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stats(self) -> dict[str, Any]:
        return json.loads(self.stats_path.read_text(encoding="utf-8"))


def run_cli(*args: object, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """``d2stream ARGS`` from this checkout (whatever ``cwd`` is), output captured."""
    return subprocess.run([sys.executable, "-m", "daemon.cli.main", *map(str, args)], cwd=cwd,
                          env=env or subprocess_env(), capture_output=True, text=True,
                          timeout=timeout)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_mosquitto(folder: Path, port: int) -> subprocess.Popen:
    """A mosquitto broker listening on ``127.0.0.1:port`` (its config and log in ``folder``)."""
    binary = require_program("mosquitto")
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    f"log_dest file {folder / 'mosquitto.log'}\n", encoding="utf-8")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    if not wait_until(lambda: _port_open(port) or proc.poll() is not None, 15) \
            or proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        pytest.fail(f"mosquitto did not start on port {port}: {err}", pytrace=False)
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)
