"""Image-folder source: the images of a directory in name order, once or in a loop."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2

from daemon.config.schema import FolderSource as FolderSourceConfig
from daemon.sources.base import Captured, FrameSource, SourceError

log = logging.getLogger(__name__)


class FolderSource(FrameSource):
    """Reads ``path/<pattern>`` files sorted by name; unreadable files are skipped with a warning.

    With ``fps: 0`` images are handed over as fast as the model takes them (nothing dropped)
    and count as one second apart on the event clock (``Captured.t_media``); with ``fps > 0``
    they are paced like a camera and may be dropped when the model is slower.
    """

    def __init__(self, name: str, config: FolderSourceConfig) -> None:
        self.name = name
        self.config = config
        self.lossless = config.fps == 0
        self.pace_fps = config.fps or None
        self._files: list[Path] = []
        self._index = 0
        self._delivered = 0  # images handed over, across loops and reopenings

    def describe(self) -> str:
        return f"folder {self.config.path}"

    def open(self) -> None:
        if not self.config.path.is_dir():
            raise SourceError(self.name, f"image folder not found: {self.config.path}")
        found = {p for pattern in self.config.patterns for p in self.config.path.glob(pattern)}
        self._files = sorted(p for p in found if p.is_file())
        if not self._files:
            patterns = ", ".join(self.config.patterns)
            raise SourceError(self.name, f"no images matching {patterns} in {self.config.path}")
        self._index = 0

    def read(self) -> Captured | None:
        skipped = 0
        while skipped <= len(self._files):
            if self._index >= len(self._files):
                if not self.config.loop:
                    return None
                self._index = 0
            path = self._files[self._index]
            self._index += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                self._delivered += 1
                t_media = float(self._delivered - 1) if self.lossless else None
                return Captured(image, t_media=t_media)
            log.warning("camera %r: skipping unreadable image %s", self.name, path)
            skipped += 1
        raise SourceError(self.name, f"no readable image in {self.config.path}")

    def close(self) -> None:
        self._files = []
        self._index = 0
