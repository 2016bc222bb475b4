"""A real MJPEG-over-HTTP camera for tests: it can hang up after N frames, like a flaky camera."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2

from daemon.demo.synthetic import ShapeScene


def encode_jpeg(image) -> bytes:  # noqa: ANN001 - (H, W, 3) uint8 BGR
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def serve_mjpeg(handler: BaseHTTPRequestHandler, jpegs: Iterable[bytes], fps: float) -> None:
    """Answer a GET with a ``multipart/x-mixed-replace`` stream of ``jpegs``, ``fps`` a second,
    until they run out or the client hangs up."""
    handler.send_response(200)
    handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
    handler.end_headers()
    try:
        for data in jpegs:
            handler.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n"
                                + f"Content-Length: {len(data)}\r\n\r\n".encode() + data
                                + b"\r\n")
            handler.wfile.flush()
            time.sleep(1.0 / fps)
    except OSError:  # the client hung up
        pass


class MjpegCamera:
    """Serves ``/cam.mjpg``; each connection gets ``per_connection`` frames, then is closed.

    Frames come from a bouncing-shapes scene (``seed``) and continue across connections.
    """

    def __init__(self, per_connection: int = 5, fps: float = 20.0, seed: int = 2,
                 size: tuple[int, int] = (320, 240)) -> None:
        self.per_connection = per_connection
        self.fps = fps
        self.scene = ShapeScene(*size, seed=seed)
        self.connections = 0
        self.frames_sent = 0
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"camera": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"

    def next_jpeg(self) -> bytes:
        with self._lock:
            image, _ = self.scene.render()
            self.scene.step()
            self.frames_sent += 1
        return encode_jpeg(image)

    def __enter__(self) -> MjpegCamera:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    camera: MjpegCamera
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return None

    def do_GET(self) -> None:  # noqa: N802
        cam = self.camera
        cam.connections += 1
        serve_mjpeg(self, (cam.next_jpeg() for _ in range(cam.per_connection)), cam.fps)
