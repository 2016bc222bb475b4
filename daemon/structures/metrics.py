"""Thread-safe counters and rolling windows of the pipeline (rates, latencies, drops, restarts).

Everything here is read by ``/healthz``, ``/metrics``, systemd ``STATUS=`` lines and the final
stats written by ``d2stream run --stats-json``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from daemon.structures.faults import FaultStats

RATE_WINDOW_S = 5.0
LATENCY_SAMPLES = 2048


class RateMeter:
    """Events per second over the last ``window`` seconds."""

    def __init__(self, window: float = RATE_WINDOW_S) -> None:
        self.window = window
        self._times: deque[float] = deque()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-6)
        return (len(self._times) - 1) / span if now - self._times[-1] < self.window else 0.0

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()


def peak_rss_kb(pid: int | str = "self") -> int | None:
    """Peak resident set size of a process in KiB (``VmHWM``; Linux), ``None`` if unknown.

    Unlike ``getrusage().ru_maxrss`` it is not inherited from the parent across fork/exec.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def quantiles(values: deque[float] | list[float], qs: tuple[float, ...]) -> list[float | None]:
    """Quantiles of ``values`` (``None`` when empty: JSON has no NaN)."""
    if not values:
        return [None] * len(qs)
    return [float(v) for v in np.quantile(np.asarray(values, dtype=np.float64), qs)]


@dataclass
class CameraStats:
    captured: int = 0
    processed: int = 0
    events: int = 0
    reopens: int = 0
    connected: bool = False
    finished: bool = False
    state: str = "opening"
    last_frame_mono: float | None = None
    first_submit_mono: float | None = None
    last_result_mono: float | None = None
    capture_rate: RateMeter = field(default_factory=RateMeter)
    process_rate: RateMeter = field(default_factory=RateMeter)
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    skipped: int = 0
    motion_frames: int = 0
    motion_score: float = 0.0
    objects: dict[str, int] = field(default_factory=dict)
    detection: bool = True


class Metrics:
    """Shared pipeline statistics; every method is safe to call from any thread."""

    def __init__(self, queue_stats: Callable[[], dict[str, tuple[int, int]]] | None = None) -> None:
        self._lock = threading.Lock()
        self.started_mono = time.monotonic()
        self.cameras: dict[str, CameraStats] = {}
        self.queue_stats = queue_stats or dict
        self.worker_restarts = 0
        self.remote: dict[str, int] | None = None
        self.worker_pid: int | None = None
        self.worker_peak_rss_kb = 0
        self.worker_alive = False
        self.frames_lost = 0
        self.inference_s: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.inference_count = 0
        self.inference_total_s = 0.0
        self.sink_dropped: dict[str, int] = {}
        self.model_name = ""
        self.ready = False
        self.faults = FaultStats()

    def add_camera(self, name: str) -> None:
        with self._lock:
            self.cameras.setdefault(name, CameraStats())

    def frame_captured(self, camera: str, now: float) -> None:
        with self._lock:
            stats = self.cameras[camera]
            stats.captured += 1
            stats.last_frame_mono = now
            stats.capture_rate.tick(now)

    def frame_submitted(self, camera: str, now: float) -> None:
        with self._lock:
            stats = self.cameras[camera]
            if stats.first_submit_mono is None:
                stats.first_submit_mono = now

    def frame_processed(self, camera: str, latency_s: float, inference_s: float,
                        now: float) -> None:
        with self._lock:
            stats = self.cameras[camera]
            stats.processed += 1
            stats.last_result_mono = now
            stats.process_rate.tick(now)
            stats.latency.append(latency_s)
            self.inference_s.append(inference_s)
            self.inference_count += 1
            self.inference_total_s += inference_s

    def events_emitted(self, camera: str, count: int) -> None:
        with self._lock:
            self.cameras[camera].events += count

    def frame_skipped(self, camera: str) -> None:
        """A frame the event stage kept from the model (no motion, or the fps cap)."""
        with self._lock:
            self.cameras[camera].skipped += 1

    def motion_observed(self, camera: str, score: float, moved: bool) -> None:
        with self._lock:
            stats = self.cameras[camera]
            stats.motion_score = score
            stats.motion_frames += int(moved)

    def object_counts(self, camera: str, counts: dict[str, int]) -> None:
        """Objects with an open event, per label."""
        with self._lock:
            self.cameras[camera].objects = dict(counts)

    def set_detection(self, camera: str, on: bool) -> None:
        with self._lock:
            if camera in self.cameras:
                self.cameras[camera].detection = on

    def set_connected(self, camera: str, connected: bool) -> None:
        with self._lock:
            self.cameras[camera].connected = connected

    def set_state(self, camera: str, state: str) -> None:
        """``opening``, ``reading``, ``waiting`` (between reopen attempts) or ``finished``."""
        with self._lock:
            self.cameras[camera].state = state

    def set_finished(self, camera: str) -> None:
        with self._lock:
            self.cameras[camera].state = "finished"
            self.cameras[camera].finished = True
            self.cameras[camera].connected = False

    def source_reopened(self, camera: str) -> None:
        with self._lock:
            self.cameras[camera].reopens += 1

    def worker_started(self, pid: int, restarted: bool) -> None:
        with self._lock:
            self.worker_pid = pid
            self.worker_alive = True
            self.worker_restarts += int(restarted)

    def worker_rss(self, kib: int | None) -> None:
        """Record a worker's peak RSS (the largest over restarts is kept)."""
        if kib:
            with self._lock:
                self.worker_peak_rss_kb = max(self.worker_peak_rss_kb, kib)

    def worker_died(self, lost_frames: int) -> None:
        with self._lock:
            self.worker_alive = False
            self.frames_lost += lost_frames

    def remote_stats(self, stats: dict[str, int]) -> None:
        """The remote backend's latest counters (``model.backend: remote``)."""
        with self._lock:
            self.remote = dict(stats)

    def frames_lost_add(self, count: int) -> None:
        with self._lock:
            self.frames_lost += count

    def sink_drop(self, sink: str, count: int = 1) -> None:
        with self._lock:
            self.sink_dropped[sink] = self.sink_dropped.get(sink, 0) + count

    def set_ready(self) -> None:
        with self._lock:
            self.ready = True

    def camera_fps(self, camera: str, now: float) -> float:
        with self._lock:
            return self.cameras[camera].process_rate.rate(now)

    def progress(self) -> tuple[int, int]:
        """``(frames captured, frames handled)`` over all cameras: handled frames are the
        inferences completed plus the frames motion gating kept from the model (a frame is
        skipped only when the worker could have taken it)."""
        with self._lock:
            skipped = sum(c.skipped for c in self.cameras.values())
            return (sum(c.captured for c in self.cameras.values()),
                    self.inference_count + skipped)

    def snapshot(self) -> dict[str, object]:
        """A JSON-serialisable view of every statistic."""
        now = time.monotonic()
        queues = self.queue_stats()
        faults = self.faults.snapshot()
        with self._lock:
            cameras = {name: self._camera_view(name, c, queues.get(name, (0, 0)), now)
                       for name, c in self.cameras.items()}
            inf50, inf95 = quantiles(self.inference_s, (0.5, 0.95))
            return {
                "uptime_s": round(now - self.started_mono, 3),
                "ready": self.ready,
                "model": self.model_name,
                "worker": {"pid": self.worker_pid, "alive": self.worker_alive,
                           "restarts": self.worker_restarts, "frames_lost": self.frames_lost,
                           "inferences": self.inference_count,
                           "inference_total_s": round(self.inference_total_s, 6),
                           "inference_p50_s": inf50, "inference_p95_s": inf95},
                "remote": None if self.remote is None else dict(self.remote),
                "sinks_dropped": dict(self.sink_dropped),
                "cameras": cameras,
                "faults": faults,
            }

    @staticmethod
    def _camera_view(name: str, c: CameraStats, queue: tuple[int, int],
                     now: float) -> dict[str, object]:
        p50, p95 = quantiles(c.latency, (0.5, 0.95))
        span = None
        if c.first_submit_mono is not None and c.last_result_mono is not None:
            span = c.last_result_mono - c.first_submit_mono
        return {
            "connected": c.connected, "finished": c.finished, "state": c.state,
            "detection": c.detection,
            "captured": c.captured, "processed": c.processed, "events": c.events,
            "dropped": queue[1], "queue_depth": queue[0], "reopens": c.reopens,
            "capture_fps": round(c.capture_rate.rate(now), 3),
            "fps": round(c.process_rate.rate(now), 3),
            "mean_fps": c.processed / span if span else 0.0,
            "latency_p50_s": p50, "latency_p95_s": p95,
            "skipped": c.skipped, "motion_frames": c.motion_frames,
            "motion_score": round(c.motion_score, 6), "objects": dict(c.objects),
            "last_frame_age_s": None if c.last_frame_mono is None
            else round(now - c.last_frame_mono, 3),
        }
