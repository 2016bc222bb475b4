"""Image-folder source: the images of a directory in name order, once or in a loop.

Files are decoded like ``d2stream predict`` reads them (Pillow, as Detectron2 does: EXIF
orientation applied; gray, palette, CMYK, alpha and 16-bit images converted to 8-bit BGR). The
pixel count in the header is checked before decoding, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from d2common.errors import InputImageError
from d2common.image_io import read_image_bgr
from daemon.config.schema import FolderSourceConfig
from daemon.sources.base import FrameSource, SourceError
from daemon.sources.frames import DEFAULT_MAX_PIXELS, FrameRejected
from daemon.structures.frame import Captured

log = logging.getLogger(__name__)


class FolderSource(FrameSource):
    """Reads ``path/<pattern>`` files sorted by name; unreadable files are skipped with a warning.

    With ``fps: 0`` images are handed over as fast as the model takes them (nothing dropped)
    and count as one second apart on the event clock (``Captured.t_media``); with ``fps > 0``
    they are paced like a camera and may be dropped when the model is slower.
    """

    def __init__(self, name: str, config: FolderSourceConfig,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.name = name
        self.config = config
        self.max_pixels = max_pixels
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
            try:
                image = read_image_bgr(path, self.max_pixels)
            except InputImageError as exc:
                self._skip(path, exc)
            else:
                self._delivered += 1
                t_media = float(self._delivered - 1) if self.lossless else None
                return Captured(image, t_media=t_media)
            skipped += 1
        raise SourceError(self.name, f"no readable image in {self.config.path}")

    def _skip(self, path: Path, exc: InputImageError) -> None:
        text = str(exc)
        reason = "too_large" if "exceeds the limit" in text or "decompression bomb" in text \
            else "unreadable"
        if self.on_rejected is not None:
            self.on_rejected(FrameRejected(reason, f"skipping {exc}"))
        else:
            log.warning("camera %r: skipping %s", self.name, exc)

    def close(self) -> None:
        self._files = []
        self._index = 0
