"""sd_notify over a real AF_UNIX datagram socket; progress-gated watchdog; journald format."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.service.journal import JournalFormatter, stderr_is_journal
from daemon.service.monitor import ServiceMonitor, status_line
from daemon.service.notify import Notifier
from daemon.structures.metrics import Metrics


@pytest.fixture()
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    folder = tempfile.mkdtemp(prefix="d2n", dir="/tmp")  # AF_UNIX paths are short
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    yield sock, path
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def receive_all(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            return messages


def test_messages_reach_the_socket(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready(status="running")
    assert notifier.watchdog() and notifier.status("5.0 fps") and notifier.stopping()
    notifier.close()
    assert receive_all(sock) == ["READY=1\nSTATUS=running", "WATCHDOG=1", "STATUS=5.0 fps",
                                 "STOPPING=1\nSTATUS=stopping"]


def test_abstract_namespace_socket() -> None:
    name = f"d2stream-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    try:
        assert Notifier({"NOTIFY_SOCKET": f"@{name}"}).notify(READY=1)
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_without_systemd_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready() is False


def test_watchdog_interval_is_half_of_watchdog_sec() -> None:
    assert Notifier({"WATCHDOG_USEC": "4000000"}).watchdog_interval == 2.0
    assert Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
                    ).watchdog_interval == 2.0
    other = Notifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval is None  # meant for another process


def test_watchdog_only_pings_on_real_progress(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    metrics = Metrics()
    metrics.add_camera("cam")
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    monitor = ServiceMonitor(notifier, metrics, status_interval_s=100.0)
    monitor.tick(now=0.0)
    assert receive_all(sock) == []  # not ready: nothing, not even a watchdog ping
    metrics.frame_captured("cam", 1.0)
    metrics.set_ready()
    monitor.tick(now=1.0)
    messages = receive_all(sock)
    assert messages[0] == "READY=1\nSTATUS=running" and messages[1].startswith("STATUS=cam ")
    assert "WATCHDOG=1" not in messages  # frames read but no inference completed yet
    metrics.frame_processed("cam", 0.1, 0.05, 2.0)
    metrics.frame_captured("cam", 2.0)
    monitor.tick(now=2.5)
    assert receive_all(sock) == ["WATCHDOG=1"]
    monitor.tick(now=4.0)  # interval passed, but nothing new: no ping
    assert receive_all(sock) == []
    metrics.frame_captured("cam", 4.1)  # capture alone (worker stuck) is not progress
    monitor.tick(now=6.0)
    assert receive_all(sock) == []
    metrics.frame_processed("cam", 0.1, 0.05, 6.1)
    monitor.tick(now=8.0)
    assert receive_all(sock) == ["WATCHDOG=1"]
    assert monitor.watchdog_sent == 2


def test_status_line_names_fps_drops_and_restarts() -> None:
    metrics = Metrics(lambda: {"front": (1, 7)})
    metrics.add_camera("front")
    metrics.set_connected("front", True)
    text = status_line(metrics.snapshot())
    assert text == "front 0.0 fps (7 dropped); worker restarts 0"


def test_journal_formatter_prefixes_syslog_priority() -> None:
    fmt = JournalFormatter()
    record = logging.LogRecord("daemon.x", logging.WARNING, __file__, 1, "camera lost", None, None)
    assert fmt.format(record) == "<4>daemon.x: camera lost"
    record = logging.LogRecord("daemon.x", logging.ERROR, __file__, 1, "bad", None, None)
    assert fmt.format(record).startswith("<3>")


def test_journal_stream_detection(tmp_path: Path) -> None:
    st = os.fstat(2)
    assert stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not stderr_is_journal({"JOURNAL_STREAM": "1:2"})
    assert not stderr_is_journal({})
