"""Helpers of the fault-injection tests: health polling, process sampling, a broker we restart."""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    free_port,
    require_program,
    subprocess_env,
    wait_until,
)
from tests.daemon.mjpeg_server import encode_jpeg, serve_mjpeg


def health(port: int, token: str | None = None) -> dict[str, Any]:
    """``/healthz`` of a daemon on 127.0.0.1 (``{}`` while it cannot be reached)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 "degraded" still carries the body
        try:
            return json.loads(exc.read())
        except ValueError:
            return {}
    except (OSError, ValueError):
        return {}


def process_sample(pid: int) -> tuple[int, int]:
    """``(resident KiB, open file descriptors)`` of a live process (Linux /proc)."""
    rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(p) for p in text.split()]


@dataclass
class Broker:
    """A real mosquitto on a fixed loopback port that a test stops and starts again.

    Sessions and queued QoS 1 messages persist across restarts (``persistence true``), so a
    subscriber with a persistent session receives what was published while it was away.
    """

    folder: Path
    port: int
    proc: subprocess.Popen | None = None

    @classmethod
    def create(cls, folder: Path) -> Broker:
        folder.mkdir(parents=True, exist_ok=True)
        broker = cls(folder, free_port())
        (folder / "mosquitto.conf").write_text(
            # user: when started as root, mosquitto would switch to its own user, which cannot
            # write the persistence file (nor the log) in the test's private folder
            f"user {getpass.getuser()}\n"
            f"listener {broker.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\n"
            "max_queued_messages 100000\nmax_inflight_messages 100\n"
            f"log_dest file {folder / 'mosquitto.log'}\n", encoding="utf-8")
        return broker

    def start(self) -> None:
        binary = require_program("mosquitto")
        self.proc = subprocess.Popen([binary, "-c", str(self.folder / "mosquitto.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_until(lambda: self.listening() or self.proc.poll() is not None, 15) \
                or self.proc.poll() is not None:
            pytest.fail(f"mosquitto did not start on port {self.port}", pytrace=False)

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its sessions) and wait until the port is closed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)
        self.proc = None
        assert wait_until(lambda: not self.listening(), 10)

    def listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


def wait_for(predicate: Any, timeout: float, what: str, stderr: Any = None) -> Any:
    """``wait_until`` that fails the test naming what did not happen (and the daemon's log).

    ``stderr``: a daemon's ``stderr`` method; the wait then also ends if that daemon exits."""
    daemon = getattr(stderr, "__self__", None)
    exited = [False]

    def check() -> Any:
        if daemon is not None and daemon.proc.poll() is not None:
            exited[0] = True
            return True
        return predicate()

    value = wait_until(check, timeout, interval=0.2)
    if exited[0] or not value:
        log = stderr() if callable(stderr) else ""
        why = "the daemon exited" if exited[0] else f"timed out after {timeout}s"
        pytest.fail(f"{why} waiting for {what}\n{log[-4000:]}")
    return value


def now() -> float:
    return time.monotonic()


class PersistentSubscriber:
    """A paho subscriber with a persistent session (QoS 1): it gets every message published
    under ``prefix/#`` even while it or the broker was away. Records ``(topic, payload)``."""

    def __init__(self, port: int, prefix: str, client_id: str, qos: int = 1) -> None:
        """``qos`` 2: the broker delivers each message exactly once (no QoS 1 redelivery)."""
        import paho.mqtt.client as mqtt  # noqa: PLC0415

        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311, clean_session=False)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=qos)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, 30)
        self.client.loop_start()
        if not self.subscribed.wait(20):
            pytest.fail("the test subscriber could not subscribe", pytrace=False)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def received(self) -> list[str]:
        """The text of every event message received, in arrival order (duplicates included)."""
        with self._lock:
            items = list(self.messages)
        return [payload.decode() for topic, payload in items if topic.endswith("/events")]

    def payloads(self) -> set[str]:
        """The distinct event messages received (their exact JSON text)."""
        return set(self.received())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def outbox_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """``(complete records, bytes of a torn last line)`` of an outbox journal."""
    data = path.read_bytes() if path.exists() else b""
    complete, _, torn = data.rpartition(b"\n")
    records = [json.loads(line) for line in complete.split(b"\n") if line] if complete else []
    return records, len(torn)


def pending_ids(records: list[dict[str, Any]]) -> list[str]:
    """Ids added and not acknowledged, in order."""
    acked = {r["id"] for r in records if r["op"] == "ack"}
    return [r["id"] for r in records if r["op"] == "add" and r["id"] not in acked]


def report_figure(name: str, value: Any) -> None:
    """Append a measured figure to ``$D2STREAM_FIGURES`` (JSON lines) when it is set; the
    docs/reliability.md quotes them."""
    target = os.environ.get("D2STREAM_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"figure": name, "value": value}) + "\n")


class FlakyCamera:
    """An MJPEG network camera (``http://127.0.0.1:PORT/cam.mjpg``) that can be unplugged:
    :meth:`unplug` drops the stream and refuses connections, :meth:`plug` serves again on the
    same port. Frames are bouncing shapes, numbered across outages."""

    def __init__(self, fps: float = 10.0, seed: int = 3) -> None:
        from daemon.demo.synthetic import ShapeScene  # noqa: PLC0415

        self.fps = fps
        self.scene = ShapeScene(320, 240, seed=seed)
        self.port = free_port()
        self.plugged = threading.Event()
        self.connections = 0
        self._lock = threading.Lock()
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cam.mjpg"

    def jpeg(self) -> bytes:
        with self._lock:
            image, _ = self.scene.render()
            self.scene.step()
        return encode_jpeg(image)

    def plug(self) -> None:
        from http.server import ThreadingHTTPServer  # noqa: PLC0415

        handler = type("Handler", (_FlakyHandler,), {"camera": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.plugged.set()
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def unplug(self) -> None:
        self.plugged.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _FlakyHandler(BaseHTTPRequestHandler):
    camera: FlakyCamera
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None

    def do_GET(self) -> None:  # noqa: N802
        cam = self.camera
        cam.connections += 1
        while_plugged = iter(cam.plugged.is_set, False)  # stops once unplugged
        serve_mjpeg(self, (cam.jpeg() for _ in while_plugged), cam.fps)
        self.close_connection = True


class PipedDaemon(DaemonProcess):
    """``d2stream run`` whose stderr goes through a pipe (copied to ``daemon.stderr`` by this
    process): the daemon's own file-size limit (RLIMIT_FSIZE) then never applies to its log."""

    def __init__(self, config: Path, workdir: Path, prefix: list[str] | None = None) -> None:
        """``prefix``: a command the daemon runs under (e.g. a sandbox)."""
        self.workdir = workdir
        self.stdout_path = workdir / "daemon.stdout"
        self.stderr_path = workdir / "daemon.stderr"
        self.stats_path = workdir / "stats.json"
        args = [sys.executable, "-m", "daemon.cli.main", "run", "--config", str(config),
                "--stats-json", str(self.stats_path)]
        self.proc = subprocess.Popen([*(prefix or []), *args], cwd=workdir, env=subprocess_env(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._copier = threading.Thread(target=self._copy, daemon=True)
        self._copier.start()

    def _copy(self) -> None:
        assert self.proc.stderr is not None
        with open(self.stderr_path, "ab") as out:
            for line in self.proc.stderr:
                out.write(line)
                out.flush()

    def wait(self, timeout: float) -> int:
        code = super().wait(timeout)
        self._copier.join(10)
        return code


def message_key(text: str) -> str:
    """The outbox key of an event message's JSON text (``<event id>:<digest>``)."""
    from daemon.sinks.outbox import message_key as key  # noqa: PLC0415

    event_id = json.loads(text)["after"]["id"]
    return key(type("Message", (), {"json": text, "event_id": event_id})())


def check_chains(texts: list[str], what: str, ended: bool = False) -> dict[str, list[str]]:
    """Each event's messages, in file order, form an unbroken life: ``start`` (``before`` null),
    then messages whose ``before`` is the previous ``after``, nothing after ``end``. A message
    lost in the middle breaks the chain. With ``ended`` every event must have ended.

    Returns ``event id -> [types]``."""
    last: dict[str, dict[str, Any] | None] = {}
    types: dict[str, list[str]] = {}
    for text in texts:
        message = json.loads(text)
        event = message["after"]["id"]
        seen = types.setdefault(event, [])
        if not seen:
            assert message["type"] == "start" and message["before"] is None, \
                f"{what}: event {event} does not begin with its start: {message['type']}"
        else:
            assert seen[-1] != "end", f"{what}: event {event} has a message after its end"
            assert message["before"] == last[event], \
                f"{what}: a message of event {event} is missing before this {message['type']}"
        seen.append(message["type"])
        last[event] = message["after"]
    if ended:
        open_events = [e for e, kinds in types.items() if kinds[-1] != "end"]
        assert not open_events, f"{what}: events never ended: {open_events[:5]}"
    return types


def log_lines(path: Path) -> list[str]:
    """The lines of a JSON-lines file, each checked to be complete JSON."""
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n"), f"{path}: last line is not terminated"
    lines = text.splitlines()
    for line in lines:
        json.loads(line)
    return lines
