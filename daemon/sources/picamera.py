"""Raspberry Pi camera through picamera2 (imported only when such a camera is configured).

Two streams are configured: ``main`` (display resolution, for the preview, the live view and
snapshots) and ``lores`` at the model's input size, which is what the model sees. Every
request is released back to libcamera, even when converting it fails; a capture that does not
complete within ``stall_timeout_s`` is reported as a failure so that the camera is reopened.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np

from daemon.config.schema import PiCameraSourceConfig
from daemon.sources.base import FrameSource, SourceError
from daemon.structures.frame import Captured

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "picamera2 is not importable: on Raspberry Pi OS install it with "
    "'sudo apt install python3-picamera2' and create the venv with --system-site-packages "
    "(or pip install 'd2stream[picamera]')"
)


def model_input_size(
    frame_wh: tuple[int, int], min_size: int, max_size: int
) -> tuple[int, int]:
    """``(w, h)`` the model resizes a ``frame_wh`` image to (shortest edge ``min_size``, longest
    edge at most ``max_size``), rounded to even numbers as camera ISPs require."""
    w, h = frame_wh
    scale = min_size / min(w, h)
    if max(w, h) * scale > max_size:
        scale = max_size / max(w, h)
    return (max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2))


def yuv420_to_bgr(array: np.ndarray, width: int) -> np.ndarray:
    """A picamera2 ``YUV420`` array ``(H * 3 / 2, stride)`` as ``(H, width, 3)`` BGR."""
    bgr = cv2.cvtColor(array, cv2.COLOR_YUV2BGR_I420)
    return np.ascontiguousarray(bgr[:, :width])


class PiCameraSource(FrameSource):
    """A picamera2 camera with a ``main`` display stream and a ``lores`` model stream."""

    def __init__(
        self,
        name: str,
        config: PiCameraSourceConfig,
        model_min_max: tuple[int, int] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.lossless = False
        self.pace_fps = None
        self._model_min_max = model_min_max
        self._camera: Any = None
        self._lores_width = 0

    def describe(self) -> str:
        return f"picamera2 #{self.config.camera_num}"

    def lores_size(self) -> tuple[int, int]:
        """``(w, h)`` of the model stream: configured, or the model's input size for ``main``."""
        if self.config.lores_size is not None:
            return self.config.lores_size
        if self._model_min_max is None:
            return self.config.main_size
        return model_input_size(self.config.main_size, *self._model_min_max)

    def open(self) -> None:
        self.close()
        try:
            from picamera2 import Picamera2  # noqa: PLC0415 - optional, Pi only
        except ImportError:
            raise SourceError(self.name, INSTALL_HINT) from None
        try:
            camera = Picamera2(self.config.camera_num)
            camera.configure(self._video_configuration(camera))
            camera.start()
        except Exception as exc:  # picamera2/libcamera raise plain RuntimeErrors
            raise SourceError(self.name, f"cannot start picamera2: {exc}") from exc
        self._camera = camera
        actual = camera.camera_configuration()["lores"]["size"]
        self._lores_width = int(actual[0])
        log.info("camera %r: picamera2 main %s, lores %s", self.name,
                 self.config.main_size, tuple(actual))

    def _video_configuration(self, camera: Any) -> Any:
        controls = {"FrameRate": float(self.config.fps)} if self.config.fps else {}
        return camera.create_video_configuration(
            main={"size": tuple(self.config.main_size), "format": "RGB888"},
            lores={"size": self.lores_size(), "format": "YUV420"},
            buffer_count=self.config.buffer_count,
            controls=controls,
        )

    def read(self) -> Captured | None:
        if self._camera is None:
            raise SourceError(self.name, "read before open")
        try:
            request = self._camera.capture_request(wait=self.config.stall_timeout_s)
        except TimeoutError:
            raise SourceError(
                self.name, f"capture stalled: no frame within {self.config.stall_timeout_s}s"
            ) from None
        except Exception as exc:
            raise SourceError(self.name, f"capture failed: {exc}") from exc
        try:
            main = request.make_array("main")
            lores = request.make_array("lores")
        finally:
            request.release()
        # picamera2's "RGB888" is laid out B, G, R in memory: already OpenCV's order.
        display = np.ascontiguousarray(main[..., :3])
        return Captured(yuv420_to_bgr(lores, self._lores_width), display)

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        for step in (camera.stop, camera.close):
            try:
                step()
            except Exception as exc:  # closing must never raise
                log.debug("camera %r: %s failed: %s", self.name, step.__name__, exc)
