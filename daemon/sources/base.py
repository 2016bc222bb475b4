"""What every camera source produces (:class:`Frame`) and the interface a source implements."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from daemon.errors import D2StreamError
from daemon.sources.frames import FrameRejected


class SourceError(D2StreamError):
    """A camera that cannot be opened or stopped delivering frames."""

    def __init__(self, camera: str, message: str) -> None:
        self.camera = camera
        super().__init__(f"camera {camera!r}: {message}")


@dataclass(frozen=True)
class Frame:
    """One captured image on its way through the pipeline.

    Attributes:
        camera: name of the camera (``cameras[].name``).
        seq: per-camera sequence number, counting every frame read (dropped ones included),
            continued across reopenings.
        t_mono: ``time.monotonic()`` at capture (system-wide clock: comparable across processes).
        t_wall: ``time.time()`` at capture.
        image: ``(H, W, 3)`` uint8 BGR, the image the model sees.
        display: optional higher-resolution ``(H2, W2, 3)`` uint8 BGR image of the same moment
            for display (picamera2's main stream); ``None`` when ``image`` is also the display.
        t_media: seconds into the media for sources read faster or slower than real time (a
            video file read as fast as the model goes): the event stage measures time on it;
            ``None`` for live sources.
    """

    camera: str
    seq: int
    t_mono: float
    t_wall: float
    image: np.ndarray
    display: np.ndarray | None = None
    t_media: float | None = None

    @property
    def display_image(self) -> np.ndarray:
        """The image to draw on: ``display`` when present, else ``image``."""
        return self.image if self.display is None else self.display

    @classmethod
    def now(cls, camera: str, seq: int, image: np.ndarray,
            display: np.ndarray | None = None, t_media: float | None = None) -> Frame:
        """A frame stamped with the current clocks."""
        return cls(camera, seq, time.monotonic(), time.time(), image, display, t_media)


@dataclass(frozen=True)
class Captured:
    """What :meth:`FrameSource.read` returns: the model image, an optional display image and,
    for media not read in real time, the position in the media (seconds)."""

    image: np.ndarray
    display: np.ndarray | None = None
    t_media: float | None = None


class FrameSource(ABC):
    """One camera. Not thread-safe: a single producer thread owns it.

    Attributes:
        name: the camera name.
        lossless: ``True`` for sources that can wait (files read as fast as the model goes,
            folders without ``fps``): the producer then blocks on a full queue instead of
            dropping frames.
        pace_fps: when set, the producer paces reads to this rate (files played in real time).
        on_rejected: where a source that skips unusable images itself reports them.
    """

    name: str
    lossless: bool = False
    pace_fps: float | None = None
    #: set by the producer: told about images a source skipped itself (unreadable files)
    on_rejected: Callable[[FrameRejected], None] | None = None

    @abstractmethod
    def open(self) -> None:
        """Open the device, stream or file.

        Raises:
            SourceError: when it cannot be opened.
        """

    @abstractmethod
    def read(self) -> Captured | None:
        """The next image, or ``None`` at the end of a finite source (file without ``loop``).

        Raises:
            SourceError: when the camera fails; the producer closes and reopens it.
        """

    def probe(self) -> bool:
        """A cheap check, before a full :meth:`open`, that the camera may be back (the reopen
        loop runs it every ``reopen.probe_interval_s``); ``True`` when it cannot tell."""
        return True

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call more than once."""

    def describe(self) -> str:
        """Short human description for logs."""
        return type(self).__name__
