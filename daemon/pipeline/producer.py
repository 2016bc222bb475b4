"""Producer thread: reads one source into its queue, reopening a lost camera with backoff."""

from __future__ import annotations

import logging
import threading
import time

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


class Producer:
    """Owns one :class:`FrameSource` and the thread that feeds its frames to the hub."""

    def __init__(self, source: FrameSource, reopen: ReopenSection, hub: FrameHub,
                 metrics: Metrics, stop: threading.Event,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.source = source
        self.max_pixels = max_pixels
        source.on_rejected = self._rejected
        self.name = source.name
        self.reopen = reopen
        self.hub = hub
        self.metrics = metrics
        self.stop = stop
        self.seq = 0
        self._opened = False
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}",
                                        daemon=True)

    def open_initial(self) -> None:
        """Open the source before the pipeline starts.

        Raises:
            SourceError: when it cannot be opened and ``reopen.on_start_failure`` is ``fail``.
        """
        try:
            self.source.open()
        except SourceError as exc:
            if self.reopen.on_start_failure == "fail":
                raise
            log.warning("%s; retrying in the background", exc)
            return
        self._opened = True
        self.metrics.set_connected(self.name, True)
        log.info("camera %r: %s opened", self.name, self.source.describe())

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            if not self._opened and not self._reopen_loop(first=True):
                return
            self._read_loop()
        except Exception:  # a bug must not kill the daemon silently
            log.exception("camera %r: capture thread failed", self.name)
        finally:
            self.source.close()
            self.hub.finish(self.name)
            self.metrics.set_finished(self.name)

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
            if not self.hub.put(frame, self.stop):
                return
            if self.source.pace_fps:
                paced += 1
                pace_start = self._pace(pace_start, paced, self.source.pace_fps)

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
        """Open the source until it works, waiting with backoff; ``False`` on stop/give-up."""
        backoff = Backoff(self.reopen)
        while not self.stop.is_set():
            if backoff.exhausted():
                log.error("camera %r: giving up after %d attempts", self.name, backoff.attempts)
                return False
            if self.stop.wait(backoff.next_delay()):
                return False
            try:
                self.source.open()
            except SourceError as exc:
                log.warning("%s (attempt %d)", exc, backoff.attempts)
                continue
            if not first:
                self.metrics.source_reopened(self.name)
            outage = self.metrics.faults.camera_recovered(self.name)
            self.metrics.set_connected(self.name, True)
            after = f" after {outage:.1f}s" if outage is not None else ""
            log.info("camera %r: %s %s%s", self.name, self.source.describe(),
                     "opened" if first else "reopened", after)
            return True
        return False
