"""Browser live view: MJPEG streams of annotated frames, a page showing them, health, metrics.

Routes (``ThreadingHTTPServer``, 127.0.0.1 by default):

- ``/``: an HTML page with every camera's stream and live statistics;
- ``/stream/<camera>.mjpg``: ``multipart/x-mixed-replace`` JPEG stream (at most ``max_fps``);
- ``/snapshot/<camera>.jpg``: the latest annotated frame;
- ``/healthz``: JSON status (HTTP 200 when ``ok``, 503 otherwise);
- ``/metrics``: Prometheus text.

Frames are annotated and encoded only while someone watches.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from daemon.config.schema import DrawSection, HttpOutput
from daemon.pipeline import prometheus
from daemon.pipeline.metrics import Metrics
from daemon.pipeline.results import FrameResult
from daemon.sinks.annotate import annotate, encode_jpeg
from daemon.sinks.base import OutputError, Sink
from daemon.sinks.http_page import index_html

log = logging.getLogger(__name__)

BOUNDARY = "d2streamframe"


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

    def __init__(self, config: HttpOutput, draw: DrawSection, cameras: list[str],
                 queue_size: int, metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.draw = draw
        self.cameras = list(cameras)
        self.feeds = {name: _Feed() for name in cameras}
        self.feed_cond = threading.Condition()
        self.stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self._serve_thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server else self.config.port

    def open(self) -> None:
        handler = type("Handler", (_Handler,), {"sink": self})
        try:
            self.server = ThreadingHTTPServer((self.config.host, self.config.port), handler)
        except OSError as exc:
            raise OutputError(
                f"outputs.http.port: cannot listen on {self.config.host}:{self.config.port}: "
                f"{exc.strerror or exc}") from None
        self.server.daemon_threads = True
        self._serve_thread = threading.Thread(target=self.server.serve_forever,
                                              kwargs={"poll_interval": 0.2},
                                              name="http-server", daemon=True)
        self._serve_thread.start()
        log.info("live view on http://%s:%d/", self.config.host, self.port)

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

    def client(self, camera: str, delta: int) -> None:
        with self.feed_cond:
            self.feeds[camera].clients += delta

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
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", index_html(self.sink.cameras).encode())
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

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

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
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        sink.client(camera, +1)
        try:
            last, _ = sink.encode_latest(camera)
            last = last - 1 if last else 0
            while not sink.stopping.is_set():
                current, data = sink.wait_jpeg(camera, last, timeout=1.0)
                if data is None or current == last:
                    continue
                last = current
                head = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                        f"Content-Length: {len(data)}\r\n\r\n").encode()
                self.wfile.write(head + data + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            sink.client(camera, -1)
