"""Live-view clients for load tests: MJPEG readers, viewers that never read, status pollers."""

from __future__ import annotations

import http.client
import socket
import threading
from dataclasses import dataclass, field

from tests.daemon.reliability.fault_helpers import health


def read_stream(port: int, stop: threading.Event, counts: list[int], index: int,
                camera: str = "cam") -> None:
    """Read ``/stream/<camera>.mjpg`` until ``stop``; counts the frames in ``counts[index]``."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", f"/stream/{camera}.mjpg")
        response = conn.getresponse()
        if response.status != 200:
            return
        while not stop.is_set():
            chunk = response.read(16384)
            if not chunk:
                break
            counts[index] += chunk.count(b"--d2streamframe")
    except OSError:
        pass


def stalled_viewer(port: int, camera: str = "cam") -> socket.socket:
    """A viewer that asks for the stream and never reads (small receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /stream/{camera}.mjpg HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def poll_health(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        health(port)
        stop.wait(0.05)


@dataclass
class Crowd:
    """``readers`` stream readers, ``stalled`` viewers that never read, ``pollers``."""

    port: int
    readers: int
    stalled: int
    pollers: int = 4
    stop: threading.Event = field(default_factory=threading.Event)
    counts: list[int] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)

    def start(self) -> None:
        self.counts = [0] * self.readers
        self._threads = [threading.Thread(target=read_stream, daemon=True,
                                          args=(self.port, self.stop, self.counts, i))
                         for i in range(self.readers)]
        self._threads += [threading.Thread(target=poll_health, args=(self.port, self.stop),
                                           daemon=True) for _ in range(self.pollers)]
        for thread in self._threads:
            thread.start()
        self._sockets = [stalled_viewer(self.port) for _ in range(self.stalled)]

    def close(self) -> None:
        self.stop.set()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(5)

    @property
    def size(self) -> int:
        return self.readers + self.stalled + self.pollers
