"""The interface a camera source implements (what it produces is in
:mod:`daemon.structures.frame`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from d2common.errors import D2StreamError
from daemon.sources.frames import FrameRejected
from daemon.structures.frame import Captured


class SourceError(D2StreamError):
    """A camera that cannot be opened or stopped delivering frames."""

    def __init__(self, camera: str, message: str) -> None:
        self.camera = camera
        super().__init__(f"camera {camera!r}: {message}")


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
