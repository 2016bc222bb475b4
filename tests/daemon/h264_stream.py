"""A real H.264 camera for tests: an MPEG-TS stream over HTTP on loopback, from a video file.

Every connection gets its own ``ffmpeg -re -stream_loop -1 ... -c copy -f mpegts`` process, so
the daemon's capture and its recorder (two clients, like with an IP camera) both get a live,
never-ending stream in real time.
"""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.daemon.daemon_helpers import require_program


def make_h264(source: Path, out: Path, gop: int = 10, crf: int = 23) -> Path:
    """``source`` re-encoded as H.264 (a keyframe every ``gop`` frames, no B-frames; a low
    ``crf`` for a high bit rate)."""
    ffmpeg = require_program("ffmpeg")
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(source), "-c:v",
                    "libx264", "-preset", "ultrafast", "-g", str(gop), "-bf", "0", "-crf", str(crf),
                    "-pix_fmt", "yuv420p", str(out)], check=True, timeout=120)
    return out


class H264HttpCamera:
    """Serves ``/cam.ts``: ``video`` looped forever in real time as MPEG-TS."""

    def __init__(self, video: Path, port: int = 0) -> None:
        self.video = video
        self.ffmpeg = require_program("ffmpeg")
        self.connections = 0
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"camera": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/cam.ts"

    def start(self) -> H264HttpCamera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            for proc in self._procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)

    def spawn(self) -> subprocess.Popen:
        proc = subprocess.Popen([self.ffmpeg, "-nostdin", "-v", "error", "-re", "-stream_loop",
                                 "-1", "-i", str(self.video), "-c", "copy", "-f", "mpegts",
                                 "pipe:1"], stdout=subprocess.PIPE)
        with self._lock:
            self.connections += 1
            self._procs.append(proc)
        return proc


class _Handler(BaseHTTPRequestHandler):
    camera: H264HttpCamera

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.split("?")[0] != "/cam.ts":
            self.send_error(404)
            return
        proc = self.camera.spawn()
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.end_headers()
        try:
            assert proc.stdout is not None
            while chunk := proc.stdout.read1(65536):
                self.wfile.write(chunk)
        except OSError:  # the client hung up
            pass
        finally:
            proc.kill()
            proc.wait(10)
