"""Preview window (OpenCV highgui): one window per camera with detections and fps drawn.

``opencv-python-headless`` (the default dependency) has no GUI; the window needs an OpenCV
built with one (``pip install 'd2stream[preview]'`` installs ``opencv-python``, or Raspberry
Pi OS's ``python3-opencv``). All highgui calls happen in the daemon's main thread (GUI toolkits
such as Qt require it), fed by the sink's drop-oldest queue. Pressing ``q`` or Esc in a window
stops the daemon.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable

import cv2

from daemon.config.errors import ConfigError
from daemon.config.schema import DrawSection, PreviewOutput
from daemon.sinks.annotate import annotate
from daemon.sinks.base import Sink
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult

log = logging.getLogger(__name__)

_QUIT_KEYS = (ord("q"), ord("Q"), 27)


def highgui_backend() -> str | None:
    """The GUI backend OpenCV was built with (``QT5``, ``GTK3``...), ``None`` for none."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            value = value.strip()
            return None if value in ("", "NONE") else value
    return None


class PreviewSink(Sink):
    """Shows annotated frames with ``cv2.imshow``."""

    name = "preview"
    main_thread = True

    def __init__(self, config: PreviewOutput, draw: DrawSection, queue_size: int,
                 metrics: Metrics, request_stop: Callable[[], None]) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.draw = draw
        self.request_stop = request_stop
        self.windows: set[str] = set()
        self._last_shown: dict[str, float] = {}

    def open(self) -> None:
        backend = highgui_backend()
        if backend is None:
            raise ConfigError(
                f"OpenCV {cv2.__version__} at {os.path.dirname(cv2.__file__)} has no GUI "
                "(opencv-python-headless); install one with pip install 'd2stream[preview]' "
                "(see docs/daemon.md: Preview window) or disable the preview",
                key="outputs.preview.enabled")
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            raise ConfigError("no display to open a window on (DISPLAY is not set)",
                              key="outputs.preview.enabled")
        log.info("preview windows with OpenCV highgui (%s)", backend)

    def window_title(self, camera: str) -> str:
        return f"{self.config.window_title} - {camera}"

    def handle(self, result: FrameResult) -> None:
        now = time.monotonic()
        if now - self._last_shown.get(result.camera, 0.0) < 1.0 / self.config.max_fps:
            self._poll_keys()
            return
        self._last_shown[result.camera] = now
        title = self.window_title(result.camera)
        if title not in self.windows:
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
            self.windows.add(title)
        cv2.imshow(title, result.annotated(self.draw, lambda r: annotate(r, self.draw)))
        self._poll_keys()

    def idle(self) -> None:
        if self.windows:
            self._poll_keys()

    def _poll_keys(self) -> None:
        key = cv2.waitKey(1)
        if key >= 0 and (key & 0xFF) in _QUIT_KEYS:
            log.info("preview: quit key pressed; stopping")
            self.request_stop()

    def close(self) -> None:
        if self.windows:
            cv2.destroyAllWindows()
            cv2.waitKey(1)
            self.windows.clear()
