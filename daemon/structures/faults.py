"""Fault accounting: what failed, for how long, and how the daemon recovered.

One :class:`FaultStats` hangs off :class:`~daemon.structures.metrics.Metrics` (``metrics.faults``).
Its snapshot is the ``faults`` part of ``/healthz`` and of ``d2stream run --stats-json``:

- ``sinks``: per output, ``ok`` and, while failing, the error and for how long (a full disk,
  an unwritable folder), with counters such as ``write_errors`` or ``backlog``;
- ``cameras``: outages (camera lost until reopened) with the last and longest time to recover,
  and frames refused because they were unusable (corrupt, too large, wrong format);
- ``worker``: how long the last restart took (death noticed until the new worker is ready);
- ``http``: requests refused (``auth``, ``clients``, ``connections``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _SinkState:
    ok: bool = True
    error: str | None = None
    failed_mono: float | None = None
    failures: int = 0
    counters: dict[str, float] = field(default_factory=dict)


@dataclass
class _CameraFaults:
    outages: int = 0
    lost_mono: float | None = None
    last_recovery_s: float | None = None
    max_recovery_s: float = 0.0
    frames_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


class FaultStats:
    """Thread-safe record of failures and recoveries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sinks: dict[str, _SinkState] = {}
        self._cameras: dict[str, _CameraFaults] = {}
        self.worker_restart_s: list[float] = []
        self.http_rejected: dict[str, int] = {}

    # -- sinks ---------------------------------------------------------------------------------
    def sink_failed(self, sink: str, error: str) -> bool:
        """Mark ``sink`` failing; returns ``True`` when it was fine until now (log it once)."""
        with self._lock:
            state = self._sinks.setdefault(sink, _SinkState())
            first = state.ok
            if first:
                state.ok, state.failed_mono = False, time.monotonic()
                state.failures += 1
            state.error = error
            return first

    def sink_recovered(self, sink: str) -> float | None:
        """Mark ``sink`` working again; returns how long it failed (``None``: it was fine)."""
        with self._lock:
            state = self._sinks.setdefault(sink, _SinkState())
            if state.ok:
                return None
            state.ok, state.error = True, None
            failed, state.failed_mono = state.failed_mono, None
            return time.monotonic() - failed if failed is not None else 0.0

    def sink_set(self, sink: str, key: str, value: float) -> None:
        with self._lock:
            self._sinks.setdefault(sink, _SinkState()).counters[key] = value

    def sink_add(self, sink: str, key: str, count: float = 1) -> None:
        with self._lock:
            counters = self._sinks.setdefault(sink, _SinkState()).counters
            counters[key] = counters.get(key, 0) + count

    # -- cameras -------------------------------------------------------------------------------
    def camera_lost(self, camera: str) -> None:
        with self._lock:
            state = self._cameras.setdefault(camera, _CameraFaults())
            if state.lost_mono is None:
                state.lost_mono = time.monotonic()
                state.outages += 1

    def camera_recovered(self, camera: str) -> float | None:
        """The camera delivers again; returns the outage's length (``None``: none pending)."""
        with self._lock:
            state = self._cameras.setdefault(camera, _CameraFaults())
            if state.lost_mono is None:
                return None
            seconds = time.monotonic() - state.lost_mono
            state.lost_mono = None
            state.last_recovery_s = seconds
            state.max_recovery_s = max(state.max_recovery_s, seconds)
            return seconds

    def frame_rejected(self, camera: str, reason: str) -> int:
        """Count an unusable frame; returns how many this camera had so far."""
        with self._lock:
            state = self._cameras.setdefault(camera, _CameraFaults())
            state.frames_rejected += 1
            state.rejected_by_reason[reason] = state.rejected_by_reason.get(reason, 0) + 1
            return state.frames_rejected

    # -- worker, http --------------------------------------------------------------------------
    def worker_restarted(self, seconds: float) -> None:
        with self._lock:
            self.worker_restart_s.append(seconds)
            del self.worker_restart_s[:-100]

    def http_reject(self, reason: str) -> None:
        with self._lock:
            self.http_rejected[reason] = self.http_rejected.get(reason, 0) + 1

    # -- views ---------------------------------------------------------------------------------
    def failing_sinks(self) -> list[str]:
        with self._lock:
            return [name for name, state in self._sinks.items() if not state.ok]

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            return {
                "sinks": {name: self._sink_view(s, now) for name, s in self._sinks.items()},
                "cameras": {name: self._camera_view(c, now) for name, c in self._cameras.items()},
                "worker": {"restarts_timed": len(self.worker_restart_s),
                           "last_restart_s": _round(self.worker_restart_s[-1])
                           if self.worker_restart_s else None,
                           "max_restart_s": _round(max(self.worker_restart_s, default=0.0))},
                "http": {"rejected": dict(self.http_rejected)},
            }

    @staticmethod
    def _sink_view(state: _SinkState, now: float) -> dict[str, Any]:
        failing = None if state.failed_mono is None else _round(now - state.failed_mono)
        return {"ok": state.ok, "error": state.error, "failing_for_s": failing,
                "failures": state.failures, **state.counters}

    @staticmethod
    def _camera_view(state: _CameraFaults, now: float) -> dict[str, Any]:
        down = None if state.lost_mono is None else _round(now - state.lost_mono)
        return {"outages": state.outages, "down_for_s": down,
                "last_recovery_s": _round(state.last_recovery_s),
                "max_recovery_s": _round(state.max_recovery_s),
                "frames_rejected": state.frames_rejected,
                "rejected_by_reason": dict(state.rejected_by_reason)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
