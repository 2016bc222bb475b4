"""READY / STATUS / WATCHDOG bookkeeping, driven by the pipeline's main loop.

``WATCHDOG=1`` is sent only when, since the previous ping, frames were read AND inferences
completed: a stuck camera, a hung worker or a deadlock all stop the pings, and systemd
restarts the service after ``WatchdogSec``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from daemon.service.notify import Notifier
from daemon.structures.metrics import Metrics

log = logging.getLogger(__name__)


def status_line(snapshot: Mapping[str, Any]) -> str:
    """``front 9.8 fps (2 dropped); back 0.0 fps (0 dropped) DISCONNECTED, retrying; worker
    restarts 0`` (a camera not delivering frames is retried until it does)."""
    parts = []
    for name, cam in snapshot["cameras"].items():
        state = "" if cam["connected"] or cam["finished"] else " DISCONNECTED, retrying"
        parts.append(f"{name} {cam['fps']:.1f} fps ({cam['dropped']} dropped){state}")
    return "; ".join(parts) + f"; worker restarts {snapshot['worker']['restarts']}"


class ServiceMonitor:
    """Call :meth:`tick` often (every ~0.2 s); it decides what to tell systemd and when."""

    def __init__(self, notifier: Notifier, metrics: Metrics, status_interval_s: float,
                 watchdog: bool = True) -> None:
        self.notifier = notifier
        self.metrics = metrics
        self.status_interval_s = status_interval_s
        self.watchdog_interval = notifier.watchdog_interval if watchdog else None
        self.ready_sent = False
        self.watchdog_sent = 0
        self._next_status = 0.0
        self._next_watchdog = 0.0
        self._last_progress = (0, 0)

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if not self.ready_sent and self.metrics.ready:
            self.ready_sent = True
            self.notifier.ready(status="running")
            log.info("ready")
        if self.ready_sent and now >= self._next_status:
            self._next_status = now + self.status_interval_s
            self.notifier.status(status_line(self.metrics.snapshot()))
        if self.watchdog_interval and self.ready_sent and now >= self._next_watchdog:
            self._next_watchdog = now + self.watchdog_interval
            self._maybe_ping()

    def _maybe_ping(self) -> None:
        progress = self.metrics.progress()
        read_more = progress[0] > self._last_progress[0]
        inferred_more = progress[1] > self._last_progress[1]
        if read_more and inferred_more:
            self.notifier.watchdog()
            self.watchdog_sent += 1
            self._last_progress = progress
        else:
            log.warning("no progress (frames read: %s, inferences: %s); WATCHDOG=1 withheld",
                        "yes" if read_more else "no", "yes" if inferred_more else "no")

    def stopping(self) -> None:
        self.notifier.stopping()
