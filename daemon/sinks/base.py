"""Sink base class: its own thread and its own small drop-oldest queue.

``offer`` never blocks, so a slow sink (a stalled MQTT broker, a slow disk, a browser on a bad
link) loses its own oldest items and never holds up detection or the other sinks.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any

from d2common.errors import D2StreamError
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult, ModelInfo

log = logging.getLogger(__name__)


class OutputError(D2StreamError):
    """An output that cannot start for a reason outside the config (a port taken by another
    program): exit status 1, so that systemd tries again later."""


class Sink(ABC):
    """An output of the pipeline. Subclasses implement :meth:`handle` (runs in the sink thread).

    Life cycle: :meth:`start` (calls :meth:`open` in the caller's thread, so set-up errors
    surface at start-up), :meth:`offer` per result, :meth:`stop` (drains the queue, then calls
    :meth:`close` in the sink thread).
    """

    name = "sink"
    #: seconds between :meth:`idle` calls when nothing arrives
    idle_interval = 0.5
    #: handled in the pipeline's main thread (GUI toolkits require it) instead of a thread of
    #: its own: the main loop calls :meth:`run_once`
    main_thread = False

    def __init__(self, queue_size: int, metrics: Metrics | None = None) -> None:
        self.metrics = metrics  # the pipeline sets it when None
        self._maxsize = max(1, queue_size)
        self._items: deque[FrameResult] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, name=f"sink-{self.name}", daemon=True)

    def wants(self, result: FrameResult) -> bool:
        """Whether this sink cares about ``result`` (e.g. only frames with events)."""
        return True

    def open(self) -> None:
        """Acquire resources; raise a ``D2StreamError`` when the sink cannot work."""
        return None

    @abstractmethod
    def handle(self, result: FrameResult) -> None:
        """Process one result (sink thread)."""

    def idle(self) -> None:
        """Called in the sink thread when nothing arrived for ``idle_interval`` seconds."""
        return None

    def model_loaded(self, model: ModelInfo, counts: dict[str, dict[str, int]]) -> None:
        """Called once the model is loaded, before any result (the pipeline's thread):
        ``counts`` are every camera's object counts, each tracked label listed (at 0)."""
        return None

    def close(self) -> None:
        """Release resources (sink thread, after the queue is drained)."""
        return None

    def start(self) -> None:
        self.open()
        if not self.main_thread:
            self._thread.start()

    def run_once(self, timeout: float) -> None:
        """For a ``main_thread`` sink: handle one queued item, or call :meth:`idle` when none
        arrives within ``timeout`` seconds."""
        item = self._next(timeout)
        if item is None:
            self._safely(self.idle)
        else:
            self._safely(self.handle, item)

    def keep(self, result: FrameResult) -> Any:
        """What the queue holds of ``result`` until :meth:`handle` (default: all of it)."""
        return result

    def offer(self, result: FrameResult) -> None:
        """Queue ``result`` without blocking; the oldest queued item goes when full."""
        if not self.wants(result):
            return
        with self._cond:
            if self._closing:
                return
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
                if self.metrics is not None:
                    self.metrics.sink_drop(self.name)
            self._items.append(self.keep(result))
            self._cond.notify()

    def stop(self, timeout: float) -> None:
        """Handle what is queued (up to ``timeout`` seconds), then close."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self.main_thread:
            deadline = time.monotonic() + timeout
            while self._items and time.monotonic() < deadline:
                self.run_once(0.0)
            self._safely(self.close)
            return
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("sink %s did not finish within %.1fs", self.name, timeout)

    def _next(self, timeout: float | None = None) -> FrameResult | None:
        with self._cond:
            if not self._items and not self._closing:
                self._cond.wait(self.idle_interval if timeout is None else timeout)
            return self._items.popleft() if self._items else None

    def _loop(self) -> None:
        try:
            while True:
                item = self._next()
                if item is None:
                    if self._closing:
                        break
                    self._safely(self.idle)
                    continue
                self._safely(self.handle, item)
        finally:
            self._safely(self.close)

    def report_failure(self, error: str) -> None:
        """The output cannot work right now (disk full...): ``/healthz`` says so; logged once."""
        if self.metrics.faults.sink_failed(self.name, error):
            log.error("%s: %s; detection goes on", self.name, error)

    def report_working(self) -> None:
        """The output works (again); logs the recovery after a failure."""
        failed_for = self.metrics.faults.sink_recovered(self.name)
        if failed_for is not None:
            log.warning("%s: working again after %.1fs", self.name, failed_for)

    def _safely(self, func, *args) -> None:  # noqa: ANN001 - internal helper
        try:
            func(*args)
        except Exception:  # one bad item must not end the sink
            log.exception("sink %s: %s failed", self.name, getattr(func, "__name__", func))


@dataclass(frozen=True)
class EventsOnly:
    """What an output that writes only event messages keeps of a result: no image, so that
    a slow disk or broker (a full queue) costs kilobytes, not frames."""

    camera: str
    events: list[Any]
    counts: dict[str, int] | None = None
    snapshots: tuple[Any, ...] = ()

    @classmethod
    def of(cls, result: FrameResult, snapshots: bool = False) -> EventsOnly:
        """``snapshots``: keep the snapshot jobs too (their best frames)."""
        return cls(result.camera, list(result.events), getattr(result, "counts", None),
                   tuple(result.snapshots) if snapshots else ())
