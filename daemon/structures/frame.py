"""What a camera source produces: :class:`Captured` from a source's ``read``, and the
:class:`Frame` the pipeline carries from the producer to the worker, events and sinks."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


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
