"""``d2stream serve`` against slowloris: the live view's whole-request deadline and waiting
room (``GuardedHTTPServer``) guard it too (issue 19). Before, 64 trickling clients took every
one of its 64 threads for as long as they kept trickling, and an authenticated probe got 503."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.daemon.reliability.fault_helpers import report_figure
from tests.daemon.serve_process import ServeProcess, get

TOKEN = "serve-s3cret"
SLOW = 64  # as many as the server's connections


def _slow_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n")
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slowloris_cannot_lock_out_an_authenticated_client(demo_model: Path,
                                                           tmp_path: Path) -> None:
    timeout = 2.0
    proc = ServeProcess(demo_model, tmp_path, token=TOKEN,
                        extra=("--client-timeout", str(timeout)))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        start = time.monotonic()
        slow = {_slow_client(proc.port): start for _ in range(SLOW)}
        cut_after: list[float] = []
        statuses: list[int] = []
        while (slow or len(statuses) < 10) and time.monotonic() - start < 90:
            for sock, last in list(slow.items()):
                if _closed_by_server(sock):
                    cut_after.append(time.monotonic() - start)
                    del slow[sock]
                    sock.close()
                elif time.monotonic() - last >= timeout / 2:
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")  # never finishes its request
                        slow[sock] = time.monotonic()
                    except OSError:
                        pass  # cut: seen by the next _closed_by_server
            statuses.append(get(f"{proc.url}/v2/health/ready", auth)[0])
        for sock in slow:
            sock.close()
        assert not slow, f"{len(slow)} slow clients were never cut"
        assert set(statuses) == {200}, statuses
        assert max(cut_after) < timeout + 30  # the total deadline (slack for a loaded machine)
        assert get(f"{proc.url}/v2/health/ready")[0] == 401  # credentials still required
        report_figure("serve_slowloris_probes_200", len(statuses))
        report_figure("serve_slowloris_cut_after_s", [round(min(cut_after), 1),
                                                      round(max(cut_after), 1)])
    finally:
        proc.kill()
    log = proc.log.read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "serve: refused" in log  # one rate-limited line, not one per client
