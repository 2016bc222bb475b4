"""Bounded per-camera frame queues between the producer threads and the model worker.

A live camera's queue never blocks its producer: when it is full the OLDEST frame is dropped,
and the consumer always takes the NEWEST frame (older ones still queued are dropped then), so
no frame waits for more than the inference in progress. A lossless source (a file read as fast
as the model goes) blocks its producer instead, and the consumer takes frames in order.

A camera is *held* (:meth:`FrameHub.hold`) for each of its frames being inferred: while
``in_flight_per_camera`` of them are (1 by default), its next frame is handed out only after a
:meth:`FrameHub.release`, which the pipeline calls as soon as a result arrives (before its event
stage runs). With 1, the next frame is chosen at that moment, so it is the freshest one and the
worker never waits for the event stage (the gate then decides with the tracker as of the frame
before); with more, the worker gets the next frame before the previous result is in.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from daemon.structures.frame import Frame


@dataclass
class FrameQueue:
    """One camera's queue; all access goes through :class:`FrameHub` and its lock."""

    camera: str
    maxsize: int
    lossless: bool
    items: deque[Frame] = field(default_factory=deque)
    dropped: int = 0
    finished: bool = False


class FrameHub:
    """The queues of all cameras, with one condition shared by producers and the consumer."""

    def __init__(self, in_flight_per_camera: int = 1) -> None:
        self._cond = threading.Condition()
        self._queues: dict[str, FrameQueue] = {}
        self._order: list[str] = []
        self._next = 0
        self._held: dict[str, int] = {}
        self._limit = max(1, in_flight_per_camera)

    def add(self, camera: str, maxsize: int, lossless: bool) -> None:
        """Register a camera's queue of at most ``maxsize`` frames."""
        with self._cond:
            self._queues[camera] = FrameQueue(camera, max(1, maxsize), lossless)
            self._order.append(camera)

    def put(self, frame: Frame, stop: threading.Event | None = None) -> bool:
        """Queue a frame. Lossless queues wait for room (until ``stop``); live ones drop the
        oldest frame. Returns ``False`` when the frame was not queued because of ``stop``."""
        with self._cond:
            queue = self._queues[frame.camera]
            if queue.lossless:
                while len(queue.items) >= queue.maxsize:
                    if stop is not None and stop.is_set():
                        return False
                    self._cond.wait(0.1)
            elif len(queue.items) >= queue.maxsize:
                queue.items.popleft()
                queue.dropped += 1
            queue.items.append(frame)
            self._cond.notify_all()
            return True

    def wait_room(self, camera: str, stop: threading.Event | None = None) -> bool:
        """For a lossless queue, wait until it can take a frame (so that a file is read, and its
        frame time-stamped, only when the frame can be queued); ``False`` on ``stop``."""
        with self._cond:
            queue = self._queues[camera]
            while queue.lossless and len(queue.items) >= queue.maxsize:
                if stop is not None and stop.is_set():
                    return False
                self._cond.wait(0.1)
            return True

    def wait_frame(self, timeout: float) -> bool:
        """Wait until some camera that is not held has a frame queued (without taking it)."""
        with self._cond:
            if not self._available_locked():
                self._cond.wait(timeout)
            return self._available_locked()

    def _available_locked(self) -> bool:
        return any(q.items for name, q in self._queues.items() if not self._blocked(name))

    def _blocked(self, camera: str) -> bool:
        return self._held.get(camera, 0) >= self._limit

    def hold(self, camera: str) -> None:
        """One more frame of ``camera`` in flight (none handed out while at the limit)."""
        with self._cond:
            self._held[camera] = self._held.get(camera, 0) + 1

    def release(self, camera: str) -> None:
        """Undo one :meth:`hold` (and wake the consumer)."""
        with self._cond:
            self._held[camera] = max(0, self._held.get(camera, 0) - 1)
            self._cond.notify_all()

    def take_nowait(self) -> Frame | None:
        """The next frame to infer, or ``None`` when no camera has one."""
        return self.take(timeout=None)

    def finish(self, camera: str) -> None:
        """Mark a camera as ended (finite source at its end, or given up)."""
        with self._cond:
            self._queues[camera].finished = True
            self._cond.notify_all()

    def take(self, timeout: float | None = None) -> Frame | None:
        """The next frame to infer, cameras served in turn; ``None`` after ``timeout``."""
        with self._cond:
            frame = self._pop_locked()
            if frame is None and timeout:
                self._cond.wait(timeout)
                frame = self._pop_locked()
            if frame is not None:
                self._cond.notify_all()
            return frame

    def _pop_locked(self) -> Frame | None:
        n = len(self._order)
        for i in range(n):
            queue = self._queues[self._order[(self._next + i) % n]]
            if not queue.items or self._blocked(queue.camera):
                continue
            self._next = (self._next + i + 1) % n
            if queue.lossless:
                return queue.items.popleft()
            frame = queue.items.pop()
            queue.dropped += len(queue.items)
            queue.items.clear()
            return frame
        return None

    def all_finished(self) -> bool:
        """True when every camera has ended and no frame is left."""
        with self._cond:
            return all(q.finished and not q.items for q in self._queues.values())

    def discard_all(self) -> int:
        """Drop every queued frame (at shutdown); returns how many were dropped."""
        with self._cond:
            count = 0
            for queue in self._queues.values():
                count += len(queue.items)
                queue.dropped += len(queue.items)
                queue.items.clear()
            self._cond.notify_all()
            return count

    def wake(self) -> None:
        """Wake every waiter (used at shutdown)."""
        with self._cond:
            self._cond.notify_all()

    def stats(self) -> dict[str, tuple[int, int]]:
        """``{camera: (queue depth, frames dropped)}``."""
        with self._cond:
            return {name: (len(q.items), q.dropped) for name, q in self._queues.items()}
