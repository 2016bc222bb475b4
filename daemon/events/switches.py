"""Detection on/off per camera, switched at run time (MQTT commands, Home Assistant switches).

While a camera's detection is off, its frames are still captured and reach the live view, but
the model never sees them: the event stage treats them as skipped frames, so open events end
``events.end_after_s`` after their object was last detected and the counts fall to 0. Every
camera starts with detection on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)


class DetectionSwitches:
    """Thread-safe ``camera -> on`` with listeners told of each change (in the caller's
    thread)."""

    def __init__(self, cameras: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._on = dict.fromkeys(cameras, True)
        self._listeners: list[Callable[[str, bool], None]] = []

    @property
    def cameras(self) -> list[str]:
        return list(self._on)

    def enabled(self, camera: str) -> bool:
        with self._lock:
            return self._on.get(camera, True)

    def state(self) -> dict[str, bool]:
        with self._lock:
            return dict(self._on)

    def listen(self, listener: Callable[[str, bool], None]) -> None:
        self._listeners.append(listener)

    def set(self, camera: str, on: bool) -> bool:
        """Switch ``camera``; returns whether it changed. Unknown cameras raise ``KeyError``."""
        with self._lock:
            if camera not in self._on:
                raise KeyError(camera)
            changed = self._on[camera] != on
            self._on[camera] = on
        if changed:
            log.info("camera %r: detection %s", camera, "on" if on else "off")
            for listener in self._listeners:
                listener(camera, on)
        return changed
