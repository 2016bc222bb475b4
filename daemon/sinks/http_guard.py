"""Protections of the live-view HTTP server: credentials, query limits, rejection logging.

- :class:`Credentials` checks a bearer token (``Authorization: Bearer``, or ``?token=`` for
  ``<img>`` tags) or HTTP basic auth, always in constant time (``hmac.compare_digest``).
- :class:`RejectionLog` counts refused requests and logs at most one line a minute per reason.
- The connection limits (a waiting room with a whole-request deadline, work slots only for
  requests that passed the credentials check) live in ``http_server``.
- :class:`BoundedHTTPServer` (used by ``d2stream serve``) serves each connection in a thread but
  at most ``max_connections`` at once; a connection beyond that gets a short 503 without a thread.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger(__name__)

BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                 b"Content-Length: 17\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
                 b"too many clients\n")
_WARN_EVERY_S = 60.0
MAX_QUERY_FIELDS = 8


def query_fields(query: str) -> dict[str, list[str]] | None:
    """The fields of a URL query, or None when it has more than ``MAX_QUERY_FIELDS``."""
    try:
        return parse_qs(query, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        return None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               expected.encode("utf-8", "surrogateescape"))


class Credentials:
    """What a request must present: a token, a user name and password, both, or nothing."""

    def __init__(self, token: str | None = None, username: str | None = None,
                 password: str | None = None) -> None:
        self.token = token
        self.username = username
        self.password = password

    @property
    def required(self) -> bool:
        return self.token is not None or self.password is not None

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value of a 401 answer."""
        scheme = "Basic" if self.password is not None else "Bearer"
        return f'{scheme} realm="d2stream", charset="UTF-8"'

    def allows(self, authorization: str | None, query: str) -> bool:
        """Whether the ``Authorization`` header or the ``token`` query parameter is valid."""
        if not self.required:
            return True
        scheme, _, value = (authorization or "").strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.token is not None:
            return _same(value, self.token)
        if scheme == "basic" and self.password is not None:
            return self._basic(value)
        if self.token is not None:
            given = (query_fields(query) or {}).get("token", [])
            return len(given) == 1 and _same(given[0], self.token)
        return False

    def _basic(self, value: str) -> bool:
        try:
            decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeError, ValueError):
            return False
        user, sep, password = decoded.partition(":")
        assert self.username is not None and self.password is not None
        user_ok = _same(user, self.username)
        password_ok = _same(password, self.password)
        return bool(sep) and user_ok and password_ok


class RejectionLog:
    """Counts rejected requests by reason and logs a warning at most once a minute per reason."""

    def __init__(self, count: Callable[[str], None] | None = None,
                 what: str = "live view") -> None:
        self._count = count
        self.what = what
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def reject(self, reason: str, client: str, detail: str = "") -> None:
        if self._count is not None:
            self._count(reason)
        now = time.monotonic()
        with self._lock:
            self.counts[reason] = self.counts.get(reason, 0) + 1
            self._since[reason] = self._since.get(reason, 0) + 1
            if now - self._last.get(reason, -_WARN_EVERY_S) < _WARN_EVERY_S:
                return
            self._last[reason] = now
            count, self._since[reason] = self._since[reason], 0
        log.warning("%s: refused %d request(s) (%s), last from %s%s", self.what, count, reason,
                    client,
                    f": {detail}" if detail else "")


class BoundedHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with at most ``max_connections`` connections served at once."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, max_connections: int,
                 on_busy: Callable[[str], None] | None = None) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self._on_busy = on_busy
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket, client_address: Any) -> None:
        try:
            request.setblocking(False)
            request.send(BUSY_RESPONSE)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)
        if self._on_busy is not None:
            self._on_busy(str(client_address[0]) if client_address else "?")
