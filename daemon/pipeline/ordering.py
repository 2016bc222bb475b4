"""Deliver each camera's frames in capture order while several of them are in flight.

With ``worker.pipeline_depth`` above 1 the worker is handed a camera's next frame before the
result of the previous one has gone through the event stage (so that it never waits for that
bookkeeping). Results then come back while later frames of the same camera are already decided:
skipped by the gate, or on their way to the model. :class:`InOrderDelivery` keeps one line per
camera of the frames taken from its queue; a frame is delivered (tracker, events, sinks) only
once every earlier frame of its camera has been, so the event stage still sees each camera's
frames one at a time, in order, whatever the depth.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from daemon.structures.frame import Frame


class Outcome(Enum):
    """What became of a frame taken from a camera's queue."""

    INFERRED = "inferred"  # the model's result is in the payload
    SKIPPED = "skipped"  # the gate kept it from the model
    LOST = "lost"  # its inference failed or died with the worker: nothing to deliver


@dataclass
class _Entry:
    frame: Frame
    outcome: Outcome | None = None
    payload: Any = None


log = logging.getLogger(__name__)

Deliver = Callable[[Outcome, Frame, Any], None]


class InOrderDelivery:
    """Per-camera lines of frames; ``deliver(outcome, frame, payload)`` is called for each frame
    in the order the frames were taken, never for a LOST one, one call at a time."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._lock = threading.RLock()  # delivery may take another frame (same thread)
        self._lines: dict[str, deque[_Entry]] = {}

    def expect(self, frame: Frame) -> None:
        """``frame`` goes to the model; frames taken after it wait for its result."""
        with self._lock:
            self._lines.setdefault(frame.camera, deque()).append(_Entry(frame))

    def skipped(self, frame: Frame) -> None:
        """``frame`` will not be inferred: deliver it now, or after the frames before it."""
        with self._lock:
            self._lines.setdefault(frame.camera, deque()).append(
                _Entry(frame, Outcome.SKIPPED))
            self._drain(frame.camera)

    def done(self, frame: Frame, outcome: Outcome, payload: Any = None) -> None:
        """The model's outcome for an expected ``frame``; delivers what is now in order."""
        with self._lock:
            line = self._lines.get(frame.camera, deque())
            entry = next((e for e in line if e.frame is frame and e.outcome is None), None)
            if entry is None:
                return  # not expected (e.g. after a reset): nothing waits for it
            entry.outcome, entry.payload = outcome, payload
            self._drain(frame.camera)

    def waiting(self, camera: str) -> int:
        """Frames of ``camera`` taken but not delivered yet."""
        with self._lock:
            return len(self._lines.get(camera, ()))

    def _drain(self, camera: str) -> None:
        line = self._lines[camera]
        while line and line[0].outcome is not None:
            entry = line.popleft()
            if entry.outcome is Outcome.LOST:
                continue
            try:
                self._deliver(entry.outcome, entry.frame, entry.payload)
            except Exception:  # a bug in the event stage or a sink must not stop the line
                log.exception("camera %r frame %d: delivery failed", camera, entry.frame.seq)
