"""The live view's threaded HTTP server: who may hold a thread, for how long, on which address.

A slow client must never lock out an authenticated one. So a connection's life has two phases:

- *waiting*: from accept (or the end of its previous request) until its request line and headers
  are in. At most ``capacity`` connections wait at once; a new one evicts the one that has waited
  longest, and every waiting connection is cut when ``deadline_s`` has passed in total (not per
  read: a client that trickles one header line every few seconds is still cut on time). A real
  client sends its request in milliseconds, so a crowd of slow ones cannot keep it out.
- *served*: only a request that passed the credentials check takes one of ``capacity`` work
  slots (busy: 503), released when its response is done.

Client disconnects (reset, broken pipe, timeout) end a connection quietly; anything else a
request raises is one rate-limited log line, never a traceback. ``::``/``::1`` and other IPv6
literals are served too, ``::`` dual-stack.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

Reject = Callable[[str, str, str], None]
DISCONNECTS = (ConnectionError, TimeoutError)


def bind_host(host: str) -> tuple[str, socket.AddressFamily]:
    """The address to bind for a configured ``host`` and its socket family."""
    bare = host.strip().strip("[]")
    try:
        if ipaddress.ip_address(bare).version == 6:
            return bare, socket.AF_INET6
    except ValueError:
        pass
    return bare, socket.AF_INET


def url_host(host: str) -> str:
    """``host`` as written in a URL (IPv6 literals in brackets)."""
    bare, family = bind_host(host)
    return f"[{bare}]" if family == socket.AF_INET6 else bare


class WaitingRoom:
    """Connections waiting for their request: bounded in number and in total time."""

    def __init__(self, capacity: int, deadline_s: float, on_cut: Callable[[str, str], None]):
        self._capacity = capacity
        self._deadline_s = deadline_s
        self._on_cut = on_cut
        self._cond = threading.Condition()
        self._waiting: OrderedDict[int, tuple[float, socket.socket]] = OrderedDict()
        self._next = 0
        self._closed = False
        self._reaper = threading.Thread(target=self._reap, name="http-deadlines", daemon=True)
        self._reaper.start()

    def enter(self, sock: socket.socket) -> int:
        """Register ``sock`` as waiting; evicts the longest waiter when the room is full."""
        evicted: list[socket.socket] = []
        with self._cond:
            ticket, self._next = self._next, self._next + 1
            while len(self._waiting) >= self._capacity:
                evicted.append(self._waiting.popitem(last=False)[1][1])
            self._waiting[ticket] = (time.monotonic() + self._deadline_s, sock)
            self._cond.notify()
        for old in evicted:
            self._cut(old, "connections", "evicted by a newer connection while still waiting")
        return ticket

    def leave(self, ticket: int) -> bool:
        """Unregister; False when the connection was cut (evicted or past its deadline)."""
        with self._cond:
            return self._waiting.pop(ticket, None) is not None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._reaper.join(2.0)

    def _reap(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                expired = [t for t, (due, _) in self._waiting.items() if due <= now]
                socks = [self._waiting.pop(t)[1] for t in expired]
                if not socks:
                    dues = [due for due, _ in self._waiting.values()]
                    self._cond.wait(min(dues) - now if dues else None)
            for sock in socks:
                self._cut(sock, "timeout", "request not complete within client_timeout_s")

    def _cut(self, sock: socket.socket, reason: str, detail: str) -> None:
        try:
            peer = str(sock.getpeername()[0])
            sock.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns at once
        except OSError:
            return
        self._on_cut(reason, f"{peer} ({detail})")


class GuardedHTTPServer(ThreadingHTTPServer):
    """A thread per connection; waiting connections in a ``WaitingRoom``, work slots bounded."""

    daemon_threads = True
    request_queue_size = 128  # the stdlib's 5 makes a burst of connections wait for SYN retries

    def __init__(self, host: str, port: int, handler: Any, capacity: int, deadline_s: float,
                 reject: Reject) -> None:
        bare, self.address_family = bind_host(host)
        self.reject = reject
        self.slots = threading.BoundedSemaphore(capacity)
        self.waiting = WaitingRoom(capacity, deadline_s,
                                   lambda reason, who: reject(reason, who, ""))
        try:
            super().__init__((bare, port), handler)
        except BaseException:
            self.waiting.close()
            raise

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:  # "::" also accepts IPv4 clients
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def server_close(self) -> None:
        super().server_close()
        self.waiting.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One rate-limited line for a request that failed (a traceback never reaches stderr)."""
        import sys  # noqa: PLC0415 - only on this rare path

        exc = sys.exc_info()[1]
        client = str(client_address[0]) if client_address else "?"
        if isinstance(exc, DISCONNECTS):
            log.debug("live view: %s went away: %s", client, exc)
            return
        self.reject("error", client, f"{type(exc).__name__}: {str(exc)[:200]}")


class GuardedHandler(BaseHTTPRequestHandler):
    """Reads each request inside the waiting room; ``work_slot`` guards the response."""

    server: GuardedHTTPServer

    def handle(self) -> None:
        try:
            super().handle()
        except DISCONNECTS as exc:
            self.close_connection = True
            log.debug("live view: %s went away: %s", self.client_address[0], exc)

    def handle_one_request(self) -> None:
        ticket = self.server.waiting.enter(self.connection)
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            parsed = self.parse_request()
        finally:
            in_time = self.server.waiting.leave(ticket)
        if not in_time:  # cut while reading: what was read is a fragment
            self.close_connection = True
            return
        if not parsed:
            return
        method = getattr(self, f"do_{self.command}", None)
        if method is None:
            self.send_error(501, f"Unsupported method ({self.command!r})")
            return
        method()
        self.wfile.flush()

    def take_work_slot(self) -> bool:
        """A work slot for this request (``release_work_slot`` when done); False when busy."""
        if self.server.slots.acquire(blocking=False):
            return True
        self.server.reject("connections", str(self.client_address[0]), "")
        return False

    def release_work_slot(self) -> None:
        self.server.slots.release()
