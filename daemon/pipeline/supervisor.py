"""Parent side of the model worker: spawn, feed through shared memory, collect, restart.

A monitor thread waits on the worker's pipe and its process sentinel. When the worker dies
(crash, OOM kill, SIGKILL) or an inference hangs past ``inference_timeout_s``, the frames in
flight are counted lost, a new worker is spawned (with backoff if it keeps failing) and the
pipeline goes on; producers keep capturing meanwhile, dropping their oldest frames.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from d2common.errors import D2StreamError, ModelError
from daemon.config.schema import WorkerSection
from daemon.pipeline.shm_ring import ShmRing
from daemon.pipeline.worker import WorkerSpec, unpack_prediction, worker_main
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics, peak_rss_kb

log = logging.getLogger(__name__)


class WorkerError(D2StreamError):
    """The worker process could not be started."""


@dataclass(frozen=True)
class WorkerResult:
    """A frame and what the model found in it (``prediction``: a ``CompactPrediction``)."""

    frame: Frame
    prediction: Any
    inference_s: float
    done_mono: float


@dataclass
class _InFlight:
    frame: Frame
    slot: int
    sent_mono: float


class WorkerSupervisor:
    """Runs one worker process and hands its results to ``on_result`` (monitor thread)."""

    def __init__(self, spec: WorkerSpec, config: WorkerSection, metrics: Metrics,
                 on_result: Callable[[WorkerResult], None],
                 next_frame: Callable[[], Frame | None] | None = None,
                 on_lost: Callable[[Frame], None] | None = None) -> None:
        self.spec = spec
        # Told about every frame whose inference failed or died with the worker.
        self.on_lost = on_lost
        # Where the monitor takes the next frame from as soon as a result frees a slot, before
        # handling that result: the worker does not wait for the parent's bookkeeping.
        self.next_frame = next_frame
        self.config = config
        self.metrics = metrics
        self.on_result = on_result
        self.metadata: dict[str, Any] = {}
        self._ctx = mp.get_context("spawn")
        self._cond = threading.Condition()
        self._ring = ShmRing(config.pipeline_depth)
        self._tokens = itertools.count()
        self._inflight: dict[int, _InFlight] = {}
        self._proc: Any = None
        self._conn: Connection | None = None
        self._ready = False
        self._stopping = threading.Event()
        self._monitor = threading.Thread(target=self._monitor_loop, name="worker-monitor",
                                         daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        """Spawn the worker and wait until the model is loaded; returns the model metadata.

        Raises:
            ModelError: the model cannot be loaded.
            WorkerError: the process died or did not become ready in time.
        """
        self._spawn_and_wait(restarted=False)
        self._monitor.start()
        return self.metadata

    def _spawn_and_wait(self, restarted: bool) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=worker_main, args=(child_conn, self.spec),
                                 name="d2stream-worker", daemon=True)
        proc.start()
        child_conn.close()
        try:
            msg = self._await_ready(parent_conn, proc)
        except BaseException:
            _kill(proc)
            parent_conn.close()
            raise
        self.metrics.worker_rss(peak_rss_kb(proc.pid))
        with self._cond:
            self._proc, self._conn, self._ready = proc, parent_conn, True
            self.metadata = msg[2]
            self._cond.notify_all()
        self.metrics.worker_started(proc.pid, restarted)
        log.info("worker pid %d ready (%s)", proc.pid, self.metadata.get("model_name", "model"))

    def _await_ready(self, conn: Connection, proc: Any) -> tuple:
        ready = wait([conn, proc.sentinel], timeout=self.config.start_timeout_s)
        if conn in ready:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = None
            if msg and msg[0] == "ready":
                return msg
            if msg and msg[0] == "error":
                cls = ModelError if msg[1] == "ModelError" else WorkerError
                raise cls(msg[2])
        if not ready:
            raise WorkerError(f"worker not ready after {self.config.start_timeout_s}s")
        proc.join(1.0)
        raise WorkerError(f"worker exited during start-up (exit code {proc.exitcode})")

    def stop(self, drain_timeout: float) -> None:
        """Wait up to ``drain_timeout`` for frames in flight, then end the worker."""
        self.next_frame = None  # finish what is in flight, take nothing new
        deadline = time.monotonic() + drain_timeout
        with self._cond:
            while self._inflight and self._ready and time.monotonic() < deadline:
                self._cond.wait(0.05)
            lost = len(self._inflight)
        self._stopping.set()
        with self._cond:
            self._ready = False
            conn, proc = self._conn, self._proc
            if proc is not None:
                self.metrics.worker_rss(peak_rss_kb(proc.pid))
            if conn is not None:
                try:
                    conn.send(None)
                except OSError:
                    pass
            self._cond.notify_all()
        if proc is not None:
            proc.join(max(1.0, deadline - time.monotonic()))
            _kill(proc)
        if self._monitor.is_alive():
            self._monitor.join(5.0)
        self.metrics.worker_died(lost)
        if lost:
            log.warning("%d frame(s) still in flight were abandoned at stop", lost)
        if conn is not None:
            conn.close()
        self._ring.close()

    # -- feeding -----------------------------------------------------------------------------
    def wait_slot(self, stop: threading.Event, timeout: float) -> bool:
        """Block until the worker is ready and can take a frame (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._ready and self._ring.free_slots) and not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return not stop.is_set()

    def submit(self, frame: Frame) -> bool:
        """Send a frame to the worker; ``False`` (frame counted lost) when it cannot take it."""
        if self.submit_next(lambda: frame) is None:
            self.metrics.frames_lost_add(1)
            return False
        return True

    def submit_next(self, take: Callable[[], Frame | None]) -> Frame | None:
        """If the worker can take a frame now, ``take()`` one and send it; returns it (or
        ``None`` when there was no free slot or no frame). Slot check and take are atomic, so
        several threads may call this without a frame ever being taken for a full worker."""
        with self._cond:
            if not (self._ready and self._ring.free_slots and self._conn is not None):
                return None
            frame = take()
            if frame is None:
                return None
            slot = self._ring.acquire()
            assert slot is not None
            name, shape = self._ring.write(slot, frame.image)
            token = next(self._tokens)
            self._inflight[token] = _InFlight(frame, slot, time.monotonic())
            try:
                self._conn.send((token, name, shape))
            except OSError:
                pass  # the monitor sees the death and accounts for the frame
        self.metrics.frame_submitted(frame.camera, time.monotonic())
        return frame

    def idle(self) -> bool:
        with self._cond:
            return not self._inflight

    # -- monitor -----------------------------------------------------------------------------
    def _monitor_loop(self) -> None:
        while not self._stopping.is_set():
            with self._cond:
                conn, proc = self._conn, self._proc
            try:
                ready = wait([conn, proc.sentinel], timeout=0.5)
            except OSError:
                ready = [proc.sentinel]
            if self._stopping.is_set():
                return
            if conn in ready and self._receive(conn):
                continue
            if ready or self._hung():
                self._restart()

    def _receive(self, conn: Connection) -> bool:
        """Handle one message; ``False`` when the pipe is closed (worker gone)."""
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return False
        with self._cond:
            entry = self._inflight.pop(msg[1], None)
            if entry is not None:
                self._ring.release(entry.slot)
            self._cond.notify_all()
        if entry is None:
            return True
        if self.next_frame is not None:
            self.submit_next(self.next_frame)
        if len(msg) > 4 and msg[-1] is not None:
            self.metrics.remote_stats(msg[-1])
        if msg[0] == "failed":
            log.warning("camera %r frame %d: inference failed: %s",
                        entry.frame.camera, entry.frame.seq, msg[2])
            self.metrics.frames_lost_add(1)
            self._lost([entry])
            return True
        result = WorkerResult(entry.frame, unpack_prediction(msg[2]), float(msg[3]),
                              time.monotonic())
        try:
            self.on_result(result)
        except Exception:  # a sink bug must not stop inference
            log.exception("result handling failed")
        return True

    def _lost(self, entries: list[_InFlight]) -> None:
        if self.on_lost is None:
            return
        for entry in entries:
            try:
                self.on_lost(entry.frame)
            except Exception:
                log.exception("handling a lost frame failed")

    def _hung(self) -> bool:
        with self._cond:
            if not self._inflight:
                return False
            oldest = min(e.sent_mono for e in self._inflight.values())
        if time.monotonic() - oldest <= self.config.inference_timeout_s:
            return False
        log.error("inference took longer than %.0fs; killing the worker",
                  self.config.inference_timeout_s)
        return True

    def _restart(self) -> None:
        noticed = time.monotonic()
        with self._cond:
            proc, conn = self._proc, self._conn
            lost = len(self._inflight)
            entries = list(self._inflight.values())
            self._inflight.clear()
            self._ring.release_all()
            self._ready = False
            self._cond.notify_all()
        _kill(proc)
        self.metrics.worker_died(lost)
        log.error("worker pid %s died (exit code %s); %d frame(s) lost; restarting",
                  proc.pid, proc.exitcode, lost)
        self._lost(entries)
        if conn is not None:
            conn.close()
        delay = self.config.restart_delay_s
        while not self._stopping.is_set():
            if self._stopping.wait(delay):
                return
            try:
                self._spawn_and_wait(restarted=True)
            except D2StreamError as exc:
                log.error("worker restart failed: %s", exc)
                delay = min(max(delay * 2, 0.5), self.config.restart_delay_max_s)
                continue
            took = time.monotonic() - noticed
            self.metrics.faults.worker_restarted(took)
            log.info("worker restarted in %.1fs", took)
            return


def _kill(proc: Any) -> None:
    """Make sure a worker process is gone (SIGKILL: the worker ignores SIGTERM by design)."""
    if proc is not None and proc.is_alive():
        proc.kill()
        proc.join(5.0)
