"""Live-view HTTP server against slowloris, odd queries, vanishing clients, IPv6 (issue 19)."""

from __future__ import annotations

import http.client
import logging
import socket
import struct
import threading
import time

import pytest

from tests.daemon.daemon_helpers import wait_until
from tests.daemon.sinks.test_http_security import TOKEN, get, result, server

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _slow_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slowloris_cannot_lock_out_an_authenticated_client() -> None:
    """32 unauthenticated clients each trickle a header line every second, never finishing their
    request; an authenticated /healthz keeps getting 200 and every slow client is cut once the
    whole-request deadline has passed, although it never stopped sending."""
    timeout = 2.0
    with server(token=TOKEN, client_timeout_s=timeout, max_connections=32) as sink:
        start = time.monotonic()
        slow = {_slow_client(sink.port): start for _ in range(32)}
        cut_after: list[float] = []
        statuses: list[int] = []
        probe_s: list[float] = []
        while (slow or len(statuses) < 10) and time.monotonic() - start < 60:
            for sock, last in list(slow.items()):
                if _closed_by_server(sock):
                    cut_after.append(time.monotonic() - start)
                    del slow[sock]
                    sock.close()
                elif time.monotonic() - last >= timeout / 2:
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")
                        slow[sock] = time.monotonic()
                    except OSError:
                        pass  # cut: seen by the next _closed_by_server
            asked = time.monotonic()
            statuses.append(get(sink, "/healthz", AUTH)[0])
            probe_s.append(time.monotonic() - asked)
        for sock in slow:
            sock.close()
        assert not slow, f"{len(slow)} slow clients were never cut"
        assert set(statuses) == {200}, statuses
        logging.getLogger(__name__).info(
            "slowloris: %d probes, slowest %.3f s; slow clients cut after %.1f-%.1f s",
            len(probe_s), max(probe_s), min(cut_after), max(cut_after))
        # Cut on the total deadline (generous slack for a loaded machine), not after minutes.
        assert max(cut_after) < timeout + 20
        rejected = sink.metrics.snapshot()["faults"]["http"]["rejected"]
        assert rejected.get("timeout", 0) >= 1 and "auth" not in rejected


def test_a_flood_of_connections_evicts_the_longest_waiting_one() -> None:
    with server(token=TOKEN, client_timeout_s=30.0, max_connections=4) as sink:
        slow = [_slow_client(sink.port) for _ in range(12)]
        assert wait_until(lambda: sum(map(_closed_by_server, slow)) >= 8, 15)
        assert get(sink, "/healthz", AUTH)[0] == 200
        for sock in slow:
            sock.close()


@pytest.mark.parametrize(("token", "headers", "status"), [
    (True, {}, 401), (True, AUTH, 400), (False, {}, 400),
])
def test_too_many_query_fields_is_one_logged_line(token, headers, status, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG, logger="daemon")
    with server(**({"token": TOKEN} if token else {})) as sink:
        for _ in range(5):
            assert get(sink, "/healthz?a&b&c&d&e&f&g&h&i", headers)[0] == status
        assert get(sink, "/healthz", AUTH)[0] == 200
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "refused 1 request(s)" in warnings[0].getMessage()
    assert "Traceback" not in capfd.readouterr().err


def _request_and_reset(port: int, path: str) -> None:
    """Send a request and vanish with a TCP reset before reading the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    sock.close()


def _handlers_running() -> int:
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def test_client_disconnects_are_not_logged_as_errors(caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG, logger="daemon")
    with server(max_fps=1000.0) as sink:
        sink.handle(result(1, size=(1080, 1920)))  # a JPEG of megabytes: writes hit the reset
        assert get(sink, "/snapshot/cam.jpg")[0] == 200
        for _ in range(6):
            _request_and_reset(sink.port, "/snapshot/cam.jpg")
            _request_and_reset(sink.port, "/stream/cam.mjpg")
        assert wait_until(lambda: _handlers_running() == 0 and sink.stream_clients == 0, 30)
        assert get(sink, "/healthz")[0] == 200
    assert "Traceback" not in capfd.readouterr().err
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _get6(host: str, port: int, path: str = "/healthz") -> int:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path, headers=AUTH)
        return conn.getresponse().status
    finally:
        conn.close()


def test_ipv6_loopback_is_served() -> None:
    with server(host="::1") as sink:
        assert _get6("::1", sink.port) == 200


def test_dual_stack_any_address_serves_ipv4_and_ipv6() -> None:
    with server(host="::", token=TOKEN) as sink:
        assert _get6("::1", sink.port) == 200
        assert _get6("127.0.0.1", sink.port) == 200
        assert get(sink, "/healthz")[0] == 401
