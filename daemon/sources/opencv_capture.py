"""OpenCV ``VideoCapture`` source: USB/V4L2 devices, RTSP/HTTP streams and video files."""

from __future__ import annotations

import logging
import os
import socket
from urllib.parse import urlsplit

import cv2
import numpy as np

from daemon.config.schema import OpenCVSourceConfig
from daemon.sources.base import FrameSource, SourceError
from daemon.structures.frame import Captured

log = logging.getLogger(__name__)

_BACKENDS = {
    "auto": cv2.CAP_ANY,
    "ffmpeg": cv2.CAP_FFMPEG,
    "v4l2": cv2.CAP_V4L2,
    "gstreamer": cv2.CAP_GSTREAMER,
}
_DEFAULT_FILE_FPS = 25.0
_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935,
                  "rtmps": 443, "tcp": None}
PROBE_TIMEOUT_S = 1.0


def stream_address(url: str) -> tuple[str, int] | None:
    """``(host, port)`` a network stream URL connects to over TCP, or ``None`` when that cannot
    be told (UDP, unknown schemes, no host)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return None
    if not parts.hostname or not port:
        return None
    return parts.hostname, int(port)


def tcp_reachable(address: tuple[str, int], timeout: float) -> bool:
    """Whether a TCP connection to ``address`` is accepted within ``timeout`` seconds."""
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Any 8-bit frame OpenCV may return (gray, BGR, BGRA) as contiguous ``(H, W, 3)`` BGR."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


class OpenCVSource(FrameSource):
    """A ``cv2.VideoCapture`` opened on a device index, ``/dev/videoN``, a URL or a file.

    Files are finite (``read`` returns ``None`` at the end) unless ``loop`` is set; with
    ``realtime`` they are paced at their own frame rate and frames may be dropped like a live
    camera's, without it they are read as fast as the model takes them and nothing is dropped.
    """

    def __init__(self, name: str, config: OpenCVSourceConfig) -> None:
        self.name = name
        self.config = config
        self.kind = config.kind()
        self.lossless = self.kind == "file" and not config.realtime
        self.pace_fps: float | None = None
        self._cap: cv2.VideoCapture | None = None
        # Lossless files: frames read so far (across loops and reopenings) and the file's frame
        # rate give each frame its position in the media (Captured.t_media).
        self._media_frames = 0
        self._media_fps = _DEFAULT_FILE_FPS

    def describe(self) -> str:
        return f"opencv {self.kind} {self.config.url}"

    def open(self) -> None:
        self.close()
        cap = self._create_capture()
        if not cap.isOpened():
            cap.release()
            raise SourceError(self.name, f"cannot open {self.kind} {self.config.url!r}")
        self._apply_properties(cap)
        self._cap = cap
        if self.kind == "file":
            fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            fps = fps if 0.0 < fps < 1000.0 else _DEFAULT_FILE_FPS
            if self.config.realtime:
                self.pace_fps = fps
            else:
                self._media_fps = fps
        log.debug("camera %r: opened %s", self.name, self.describe())

    def probe(self) -> bool:
        """Streams: the camera accepts a TCP connection; devices and files: the path exists.
        Far cheaper than opening a ``VideoCapture`` on a camera that is away."""
        url = self.config.url
        if self.kind == "stream":
            address = stream_address(str(url))
            timeout = min(PROBE_TIMEOUT_S, self.config.open_timeout_s)
            return address is None or tcp_reachable(address, timeout)
        if self.kind == "device":
            return os.path.exists(f"/dev/video{url}" if isinstance(url, int) else url)
        return os.path.exists(str(url))

    def _create_capture(self) -> cv2.VideoCapture:
        api = _BACKENDS[self.config.backend]
        params: list[int] = []
        if self.kind == "stream":
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.config.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.config.read_timeout_s * 1000),
            ]
        if params:
            return cv2.VideoCapture(self.config.url, api, params)
        return cv2.VideoCapture(self.config.url, api)

    def _apply_properties(self, cap: cv2.VideoCapture) -> None:
        if self.kind != "device":
            return
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, self.config.width),
                            (cv2.CAP_PROP_FRAME_HEIGHT, self.config.height),
                            (cv2.CAP_PROP_FPS, self.config.fps)):
            if value is not None and not cap.set(prop, float(value)):
                log.warning("camera %r: the device ignored property %d=%s", self.name, prop, value)

    def read(self) -> Captured | None:
        if self._cap is None:
            raise SourceError(self.name, "read before open")
        ok, image = self._cap.read()
        if ok and image is not None:
            return self._captured(image)
        if self.kind != "file":
            raise SourceError(self.name, f"no frame from {self.kind} {self.config.url!r}")
        if not self.config.loop:
            return None
        self.open()  # rewind by reopening: seeking is not reliable for every container
        ok, image = self._cap.read()
        if not ok or image is None:
            raise SourceError(self.name, f"video file has no readable frame: {self.config.url}")
        return self._captured(image)

    def _captured(self, image: np.ndarray) -> Captured:
        if not self.lossless:
            return Captured(to_bgr(image))
        t_media = self._media_frames / self._media_fps
        self._media_frames += 1
        return Captured(to_bgr(image), t_media=t_media)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
