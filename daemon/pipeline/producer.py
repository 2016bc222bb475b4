"""Producer thread: opens one source, reads it into its queue, reopens a lost camera.

The first open happens in the producer's own thread (a camera that takes ``open_timeout_s`` to
answer never blocks the daemon's main thread, nor its reaction to SIGTERM). A camera that cannot
be opened, at start or later, is retried: before each full open a cheap probe (a TCP connection
to a network camera, the device node or the file existing) runs every
``reopen.probe_interval_s`` at most, so a camera is reopened within about that long after it
comes back, however long it was away; the slower ``initial_delay_s * multiplier^n`` backoff (up
to ``max_delay_s``) applies only to full opens that fail after a probe succeeded.

The camera's state is in the metrics (``/healthz``): ``opening``, ``reading``, ``waiting``
(between two attempts) and ``finished``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from daemon.config.schema import ReopenSection
from daemon.pipeline.frame_queue import FrameHub
from daemon.sources.base import FrameSource, SourceError
from daemon.sources.frames import DEFAULT_MAX_PIXELS, FrameRejected, usable_frame
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics

log = logging.getLogger(__name__)


class Backoff:
    """Delays ``initial, initial*m, initial*m^2, ...`` capped at ``max_delay``."""

    def __init__(self, config: ReopenSection) -> None:
        self.config = config
        self.attempts = 0

    def next_delay(self) -> float:
        delay = self.config.initial_delay_s * self.config.multiplier ** self.attempts
        self.attempts += 1
        return min(delay, self.config.max_delay_s)

    def exhausted(self) -> bool:
        return 0 < self.config.max_attempts <= self.attempts

    def reset(self) -> None:
        self.attempts = 0


def _worth_logging(attempt: int) -> bool:
    """Failed attempts 1, 2, 4, 8, ... and then every 100th are logged (not every probe)."""
    return attempt & (attempt - 1) == 0 or attempt % 100 == 0


class Producer:
    """Owns one :class:`FrameSource` and the thread that feeds its frames to the hub."""

    def __init__(self, source: FrameSource, reopen: ReopenSection, hub: FrameHub,
                 metrics: Metrics, stop: threading.Event,
                 max_pixels: int = DEFAULT_MAX_PIXELS,
                 on_frame: Callable[[Frame], None] | None = None) -> None:
        """``on_frame``: called in the capture thread with every frame read (the live view),
        before it is queued for the model."""
        self.source = source
        self.on_frame = on_frame
        self.max_pixels = max_pixels
        source.on_rejected = self._rejected
        self.name = source.name
        self.reopen = reopen
        self.hub = hub
        self.metrics = metrics
        self.stop = stop
        self.seq = 0
        self.started = threading.Event()  # the first open attempt is over
        self.start_error: SourceError | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}",
                                        daemon=True)

    def start(self) -> None:
        """Start the thread; it opens the source first (:attr:`started` is set after that
        first attempt, :attr:`start_error` says how it failed)."""
        self._thread.start()

    def wait_started(self, stop: threading.Event, timeout: float | None = None) -> bool:
        """Wait for the first open attempt (or ``stop``); ``True`` once it is over."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.started.is_set() and not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.started.wait(0.05)
        return self.started.is_set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            if self._open_first() or self._reopen_loop(first=True):
                self._read_loop()
        except _StartFailed:
            pass
        except Exception:  # a bug must not kill the daemon silently
            log.exception("camera %r: capture thread failed", self.name)
        finally:
            self.started.set()
            self.source.close()
            self.hub.finish(self.name)
            self.metrics.set_finished(self.name)

    def _open_first(self) -> bool:
        """The first open attempt; ``False`` when it failed (the reopen loop goes on unless
        ``on_start_failure`` is ``fail``)."""
        self.metrics.set_state(self.name, "opening")
        try:
            self.source.open()
        except SourceError as exc:
            self.start_error = exc
            self.metrics.set_state(self.name, "waiting")
            self.started.set()
            if self.reopen.on_start_failure == "fail":
                raise _StartFailed() from None
            log.warning("%s; retrying in the background", exc)
            return False
        self._opened()
        log.info("camera %r: %s opened", self.name, self.source.describe())
        self.started.set()
        return True

    def _opened(self) -> None:
        self.metrics.set_connected(self.name, True)
        self.metrics.set_state(self.name, "reading")

    def _read_loop(self) -> None:
        pace_start = time.monotonic()
        paced = 0
        while not self.stop.is_set():
            if not self.hub.wait_room(self.name, self.stop):
                return
            try:
                captured = self.source.read()
            except Exception as exc:  # SourceError, or a backend error such as cv2.error
                self._lost(exc)
                if not self._reopen_loop(first=False):
                    return
                pace_start, paced = time.monotonic(), 0
                continue
            if captured is None:
                log.info("camera %r: end of stream after %d frames", self.name, self.seq)
                return
            try:
                image = usable_frame(captured.image, self.max_pixels)
                display = None if captured.display is None else \
                    usable_frame(captured.display, self.max_pixels)
            except FrameRejected as exc:
                self._rejected(exc)
                continue
            frame = Frame.now(self.name, self.seq, image, display, captured.t_media)
            self.seq += 1
            self.metrics.frame_captured(self.name, frame.t_mono)
            self._tap(frame)
            if not self.hub.put(frame, self.stop):
                return
            if self.source.pace_fps:
                paced += 1
                pace_start = self._pace(pace_start, paced, self.source.pace_fps)

    def _tap(self, frame: Frame) -> None:
        if self.on_frame is not None:
            try:
                self.on_frame(frame)
            except Exception:  # the live view must never stop the capture
                log.exception("camera %r: live view of frame %d failed", self.name, frame.seq)

    def _pace(self, start: float, count: int, fps: float) -> float:
        """Sleep until frame ``count`` is due; restart the schedule when far behind."""
        delay = start + count / fps - time.monotonic()
        if delay > 0:
            self.stop.wait(delay)
        elif delay < -1.0:
            return time.monotonic() - count / fps
        return start

    def _rejected(self, exc: FrameRejected) -> None:
        """An unusable frame: counted, logged (the first ten, then one in a hundred), skipped."""
        count = self.metrics.faults.frame_rejected(self.name, exc.reason)
        if count <= 10 or count % 100 == 0:
            log.warning("camera %r: frame refused (%d so far): %s", self.name, count, exc)

    def _lost(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, SourceError) else f"camera {self.name!r}: {exc}"
        log.warning("%s; reopening", message)
        self.metrics.set_connected(self.name, False)
        self.metrics.faults.camera_lost(self.name)
        self.source.close()

    def _reopen_loop(self, first: bool) -> bool:
        """Open the source until it works; ``False`` on stop or give-up. A failed probe waits
        ``probe_interval_s``, a failed full open the next backoff delay."""
        backoff = Backoff(self.reopen)
        delay, attempts = backoff.next_delay(), 0
        while not self.stop.is_set():
            if 0 < self.reopen.max_attempts <= attempts:
                log.error("camera %r: giving up after %d attempts", self.name, attempts)
                return False
            self.metrics.set_state(self.name, "waiting")
            first_wait = min(delay, self.reopen.probe_interval_s)
            if self.stop.wait(first_wait if attempts == 0 else delay):
                return False
            attempts += 1
            if not self.source.probe():
                delay = self.reopen.probe_interval_s
                if _worth_logging(attempts):
                    log.warning("camera %r: %s unreachable (attempt %d)", self.name,
                                self.source.describe(), attempts)
                continue
            self.metrics.set_state(self.name, "opening")
            try:
                self.source.open()
            except SourceError as exc:
                delay = backoff.next_delay()
                if _worth_logging(attempts):
                    log.warning("%s (attempt %d)", exc, attempts)
                continue
            self._reopened(first)
            return True
        return False

    def _reopened(self, first: bool) -> None:
        if not first:
            self.metrics.source_reopened(self.name)
        outage = self.metrics.faults.camera_recovered(self.name)
        self._opened()
        after = f" after {outage:.1f}s" if outage is not None else ""
        log.info("camera %r: %s %s%s", self.name, self.source.describe(),
                 "opened" if first else "reopened", after)


class _StartFailed(Exception):
    """The first open failed with ``on_start_failure: fail``: the thread ends."""
