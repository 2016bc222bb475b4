"""Browser live view: MJPEG streams of annotated frames, a page showing them, health, metrics.

Routes (``ThreadingHTTPServer``, 127.0.0.1 by default):

- ``/``: an HTML page with every camera's stream and live statistics;
- ``/stream/<camera>.mjpg``: ``multipart/x-mixed-replace`` JPEG stream (at most ``max_fps``);
- ``/snapshot/<camera>.jpg``: the latest annotated frame;
- ``/healthz``: JSON status (HTTP 200 when ``ok``, 503 otherwise);
- ``/metrics``: Prometheus text.

Frames are annotated and encoded only while someone watches. Every route needs the configured
credentials (``token`` or ``username``/``password``; required when ``host`` is not a loopback
address); at most ``max_clients`` streams and ``max_connections`` connections are served at
once, and a client that does not read for ``client_timeout_s`` is dropped: a slow or stalled
viewer only ever holds up its own connection, never detection.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode

from daemon.config.schema import DrawSection, HttpOutput
from daemon.sinks import prometheus
from daemon.sinks.annotate import annotate, encode_jpeg
from daemon.sinks.base import OutputError, Sink
from daemon.sinks.http_guard import BoundedHTTPServer, Credentials, RejectionLog
from daemon.sinks.http_page import index_html
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult

log = logging.getLogger(__name__)

BOUNDARY = "d2streamframe"
_SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
                     ("Referrer-Policy", "no-referrer"), ("Cache-Control", "no-store"))


@dataclass
class _Feed:
    latest: FrameResult | None = None
    latest_id: int = 0
    jpeg: bytes | None = None
    jpeg_id: int = 0
    clients: int = 0
    last_encode: float = 0.0


class HttpSink(Sink):
    """The live-view HTTP server; ``handle`` keeps each camera's latest frame."""

    name = "http"
    #: fed by the pipeline with every captured frame (``FrameResult.live``), at the camera's
    #: rate, not only with the frames the model saw
    live = True

    def __init__(self, config: HttpOutput, draw: DrawSection, cameras: list[str],
                 queue_size: int, metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.draw = draw
        self.cameras = list(cameras)
        self.feeds = {name: _Feed() for name in cameras}
        self.feed_cond = threading.Condition()
        self.stopping = threading.Event()
        self.credentials = Credentials(config.token, config.username, config.password)
        self.rejections = RejectionLog(metrics.faults.http_reject)
        self.stream_clients = 0
        self.server: BoundedHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else self.config.port

    def open(self) -> None:
        handler = type("Handler", (_Handler,), {"sink": self,
                                                "timeout": self.config.client_timeout_s})
        try:
            self.server = BoundedHTTPServer(
                (self.config.host, self.config.port), handler, self.config.max_connections,
                on_busy=lambda client: self.rejections.reject("connections", client))
        except OSError as exc:
            raise OutputError(
                f"outputs.http.port: cannot listen on {self.config.host}:{self.config.port}: "
                f"{exc.strerror or exc}") from None
        self._serve_thread = threading.Thread(target=self.server.serve_forever,
                                              kwargs={"poll_interval": 0.2},
                                              name="http-server", daemon=True)
        self._serve_thread.start()
        log.info("live view on http://%s:%d/%s", self.config.host, self.port,
                 " (credentials required)" if self.credentials.required else "")

    def wants(self, result: FrameResult) -> bool:
        return result.live

    def handle(self, result: FrameResult) -> None:
        with self.feed_cond:
            feed = self.feeds[result.camera]
            feed.latest = result
            feed.latest_id += 1
            due = feed.clients > 0 and (
                time.monotonic() - feed.last_encode >= 1.0 / self.config.max_fps)
        if due:
            self.encode_latest(result.camera)

    def encode_latest(self, camera: str) -> tuple[int, bytes | None]:
        """Annotate and encode the camera's latest frame unless already done."""
        with self.feed_cond:
            feed = self.feeds[camera]
            result, result_id = feed.latest, feed.latest_id
            if result is None or feed.jpeg_id == result_id:
                return feed.jpeg_id, feed.jpeg
        image = result.annotated(self.draw, lambda r: annotate(r, self.draw))
        data = encode_jpeg(image, self.config.jpeg_quality)
        with self.feed_cond:
            if result_id > feed.jpeg_id:
                feed.jpeg, feed.jpeg_id = data, result_id
                feed.last_encode = time.monotonic()
                self.feed_cond.notify_all()
            return feed.jpeg_id, feed.jpeg

    def wait_jpeg(self, camera: str, after: int, timeout: float) -> tuple[int, bytes | None]:
        """The next JPEG newer than ``after`` (or the current one after ``timeout``)."""
        with self.feed_cond:
            feed = self.feeds[camera]
            if feed.jpeg_id <= after and not self.stopping.is_set():
                self.feed_cond.wait(timeout)
            return feed.jpeg_id, feed.jpeg

    def add_client(self, camera: str) -> bool:
        """Count a new stream viewer; ``False`` when ``max_clients`` streams are served."""
        with self.feed_cond:
            if self.stream_clients >= self.config.max_clients:
                return False
            self.stream_clients += 1
            self.feeds[camera].clients += 1
            return True

    def remove_client(self, camera: str) -> None:
        with self.feed_cond:
            self.stream_clients -= 1
            self.feeds[camera].clients -= 1

    def close(self) -> None:
        self.stopping.set()
        with self.feed_cond:
            self.feed_cond.notify_all()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join(2.0)


class _Handler(BaseHTTPRequestHandler):
    sink: HttpSink
    server_version = "d2stream"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path, _, query = self.path.partition("?")
        if not self.sink.credentials.allows(self.headers.get("Authorization"), query):
            self._unauthorized()
            return
        if path in ("/", "/index.html"):
            page = index_html(self.sink.cameras, token_query=_token_query(query))
            self._send(200, "text/html; charset=utf-8", page.encode())
        elif path == "/healthz":
            snap = self.sink.metrics.snapshot()
            status = prometheus.health(snap)
            body = json.dumps({"status": status, **snap}, default=str).encode()
            self._send(200 if status == "ok" else 503, "application/json", body)
        elif path == "/metrics":
            text = prometheus.render(self.sink.metrics.snapshot())
            self._send(200, prometheus.CONTENT_TYPE, text.encode())
        elif path.startswith("/stream/") and path.endswith(".mjpg"):
            self._stream(path[len("/stream/"):-len(".mjpg")])
        elif path.startswith("/snapshot/") and path.endswith(".jpg"):
            self._snapshot(path[len("/snapshot/"):-len(".jpg")])
        else:
            self._send(404, "text/plain", b"not found\n")

    def _send(self, code: int, content_type: str, body: bytes,
              extra: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (*_SECURITY_HEADERS, *extra):
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _unauthorized(self) -> None:
        self.sink.rejections.reject("auth", self.client_address[0])
        self._send(401, "text/plain", b"credentials required\n",
                   (("WWW-Authenticate", self.sink.credentials.challenge()),))

    def _snapshot(self, camera: str) -> None:
        if camera not in self.sink.feeds:
            self._send(404, "text/plain", b"unknown camera\n")
            return
        _, data = self.sink.encode_latest(camera)
        if data is None:
            self._send(503, "text/plain", b"no frame yet\n")
        else:
            self._send(200, "image/jpeg", data)

    def _stream(self, camera: str) -> None:
        sink = self.sink
        if camera not in sink.feeds:
            self._send(404, "text/plain", b"unknown camera\n")
            return
        if not sink.add_client(camera):
            sink.rejections.reject("clients", self.client_address[0])
            self._send(503, "text/plain", b"too many viewers\n", (("Retry-After", "5"),))
            return
        try:
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            for key, value in _SECURITY_HEADERS:
                self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            self._stream_frames(camera)
        except OSError:  # the viewer went away or stopped reading (client_timeout_s)
            pass
        finally:
            sink.remove_client(camera)

    def _stream_frames(self, camera: str) -> None:
        """Send the newest JPEG each time there is one (a slow viewer skips frames)."""
        sink = self.sink
        last, _ = sink.encode_latest(camera)
        last = last - 1 if last else 0
        while not sink.stopping.is_set():
            current, data = sink.wait_jpeg(camera, last, timeout=1.0)
            if data is None or current == last:
                if _hung_up(self.connection):  # no frame to send, but the slot is freed
                    return
                continue
            last = current
            head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n").encode()
            self.wfile.write(head + data + b"\r\n")
            self.wfile.flush()


def _hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed its side (checked without blocking or consuming data)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True


def _token_query(query: str) -> str:
    """``token=...`` of a request's query (kept for the page's stream and status URLs)."""
    token = parse_qs(query, max_num_fields=8).get("token")
    return urlencode({"token": token[0]}) if token else ""
