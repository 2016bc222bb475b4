"""A real MJPEG network camera on loopback whose behaviour a test switches at any moment.

Modes (``StateCamera.set_mode``):

- ``serve``: every connection gets an MJPEG stream at ``fps`` (frames numbered across
  connections, :attr:`frames_sent` counts them);
- ``stall``: connections stay open but no further byte is sent (a camera that froze);
- ``blackhole``: new connections are accepted by the kernel but never answered (a camera that
  is booting, or a half-dead network path), open ones are closed;
- ``down``: nothing listens on the port (connection refused), open ones are closed.
"""

from __future__ import annotations

import socket
import threading
import time

from daemon.demo.synthetic import ShapeScene
from tests.daemon.daemon_helpers import free_port
from tests.daemon.mjpeg_server import encode_jpeg

HEADER = (b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n"
          b"\r\n")


class StateCamera:
    """``http://127.0.0.1:PORT/cam.mjpg`` in one of the modes above (``down`` at first)."""

    def __init__(self, fps: float = 10.0, seed: int = 4, size: tuple[int, int] = (320, 240)
                 ) -> None:
        self.fps = fps
        self.port = free_port()
        self.mode = "down"
        self.frames_sent = 0
        self.connections = 0
        self._scene = ShapeScene(*size, seed=seed)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._clients: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cam.mjpg"

    def set_mode(self, mode: str) -> None:
        assert mode in ("serve", "stall", "blackhole", "down"), mode
        with self._lock:
            self.mode = mode
            if mode in ("blackhole", "down"):
                for client in self._clients:
                    _close(client)
                self._clients.clear()
            if mode == "down" and self._listener is not None:
                _close(self._listener)
                self._listener = None
            elif mode != "down" and self._listener is None:
                self._listener = socket.create_server(("127.0.0.1", self.port), backlog=16,
                                                      reuse_port=False)
                self._listener.settimeout(0.05)

    def close(self) -> None:
        self._closed.set()
        self.set_mode("down")
        self._thread.join(5)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                listener = self._listener if self.mode in ("serve", "stall") else None
            if listener is None:
                time.sleep(0.02)  # blackhole: connections wait in the backlog, unanswered
                continue
            try:
                client, _ = listener.accept()
            except OSError:  # timeout, or closed by set_mode
                continue
            with self._lock:
                self.connections += 1
                self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            client.sendall(HEADER)
            while not self._closed.is_set():
                mode = self.mode
                if mode == "serve":
                    client.sendall(self._part())
                elif mode != "stall":
                    return
                time.sleep(1.0 / self.fps)
        except OSError:
            pass
        finally:
            _close(client)

    def _part(self) -> bytes:
        with self._lock:
            image, _ = self._scene.render()
            self._scene.step()
            self.frames_sent += 1
        data = encode_jpeg(image)
        return (b"--frame\r\nContent-Type: image/jpeg\r\n"
                + f"Content-Length: {len(data)}\r\n\r\n".encode() + data + b"\r\n")


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
