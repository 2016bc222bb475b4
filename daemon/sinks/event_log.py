"""Event log sink: every event as one JSON line (rotation and fsync policy from config).

When the file cannot be written (disk full, read-only or vanished folder), the lines wait in
memory (``outputs.event_log.backlog``, oldest dropped and counted beyond it), ``/healthz``
reports the failure, and writing is retried every ``RETRY_INTERVAL_S`` seconds: once it works,
the waiting lines are written first, in order. The file never holds a partial line.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from daemon.config.errors import ConfigError
from daemon.config.schema import EventLogOutput
from daemon.sinks.base import EventsOnly, Sink
from daemon.sinks.event_journal import Journal, register_consumer
from daemon.sinks.journal_jsonl import JournalUnwritable, JsonlDelivery
from daemon.sinks.jsonl import JsonlWriter
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult

log = logging.getLogger(__name__)

RETRY_INTERVAL_S = 1.0


class EventLogSink(Sink):
    """Appends ``result.events`` to ``outputs.event_log.path``."""

    name = "event_log"

    def __init__(self, config: EventLogOutput, queue_size: int, metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.writer = JsonlWriter(config.path, config.max_bytes, config.backups, config.fsync,
                                  config.fsync_interval_s)
        self.backlog: deque[str] = deque()
        self._broken = False
        self._next_retry = 0.0

    def keep(self, result: FrameResult) -> EventsOnly:
        return EventsOnly.of(result)

    def wants(self, result: FrameResult) -> bool:
        return bool(result.events)

    def open(self) -> None:
        try:
            self.writer.open()
        except OSError as exc:
            raise ConfigError(f"cannot open {self.config.path}: {exc.strerror or exc}",
                              key="outputs.event_log.path") from None
        self.report_working()

    def handle(self, result: FrameResult | EventsOnly) -> None:  # type: ignore[override]
        self._keep(event.json for event in result.events)
        self._flush()

    def idle(self) -> None:
        if self.backlog:
            self._flush()
        elif self.config.fsync == "interval" and not self._broken:
            try:
                self.writer.sync()
            except OSError as exc:
                self._failed(exc)

    def close(self) -> None:
        if self.backlog:
            self._flush(force=True)
        if self.backlog:
            log.error("event log: %d event(s) could not be written before stopping",
                      len(self.backlog))
        self.writer.close_quietly()

    def _keep(self, lines: object) -> None:
        self.backlog.extend(lines)  # type: ignore[arg-type]
        overflow = len(self.backlog) - self.config.backlog
        if overflow > 0:
            for _ in range(overflow):
                self.backlog.popleft()
            self.metrics.faults.sink_add(self.name, "backlog_dropped", overflow)
            log.warning("event log: %d waiting event(s) dropped (backlog full)", overflow)

    def _flush(self, force: bool = False) -> None:
        """Write the backlog in one append, reopening the file first after a failure."""
        if self._broken and not force and time.monotonic() < self._next_retry:
            self._publish_backlog()
            return
        try:
            if self._broken:
                self.writer.close_quietly()
                self.writer.open()
            self.writer.write_lines(list(self.backlog))
        except OSError as exc:
            self._failed(exc)
            return
        self.backlog.clear()
        self._publish_backlog()
        if self._broken:
            self._broken = False
            self.report_working()

    def _failed(self, exc: OSError) -> None:
        self._broken = True
        self._next_retry = time.monotonic() + RETRY_INTERVAL_S
        self.metrics.faults.sink_add(self.name, "write_errors")
        self._publish_backlog()
        self.report_failure(f"cannot write {self.config.path}: {exc.strerror or exc}; "
                            f"{len(self.backlog)} event(s) waiting in memory")

    def _publish_backlog(self) -> None:
        self.metrics.faults.sink_set(self.name, "backlog", len(self.backlog))


@register_consumer("event_log")
class JournalEventLogSink(Sink):
    """The event log as a journal consumer: the file gets exactly the journal's messages, in
    order, whatever crashed when (see ``journal_jsonl``); a failed write is retried from the
    journal, so nothing waits in memory."""

    name = "event_log"
    idle_interval = 0.05

    def __init__(self, config: EventLogOutput, journal: Journal, metrics: Metrics) -> None:
        super().__init__(1, metrics)
        self.config = config
        writer = JsonlWriter(config.path, config.max_bytes, config.backups, config.fsync,
                             config.fsync_interval_s)
        self.delivery = JsonlDelivery(journal.cursor(self.name), writer)
        self._broken = False
        self._next_retry = 0.0

    def wants(self, result: FrameResult) -> bool:
        return False  # events come from the journal

    def open(self) -> None:
        try:
            self.delivery.open()
        except OSError as exc:
            raise ConfigError(f"cannot open {self.config.path}: {exc.strerror or exc}",
                              key="outputs.event_log.path") from None
        self.report_working()

    def handle(self, result: FrameResult) -> None:  # never offered anything
        return None

    def idle(self) -> None:
        if self._broken and time.monotonic() < self._next_retry:
            return
        try:
            while self.delivery.pump():
                pass
        except JournalUnwritable as exc:
            self._broken = True
            self._next_retry = time.monotonic() + RETRY_INTERVAL_S
            self.report_failure(f"cannot record its progress in the {exc}; events wait in "
                                "the journal")
            return
        except OSError as exc:
            self._broken = True
            self._next_retry = time.monotonic() + RETRY_INTERVAL_S
            self.metrics.faults.sink_add(self.name, "write_errors")
            self.report_failure(f"cannot write {self.config.path}: {exc.strerror or exc}; "
                                "events wait in the journal")
            return
        if self._broken:
            self._broken = False
            self.report_working()

    def close(self) -> None:
        self._broken = False
        self.idle()
        try:
            self.delivery.close()
        except OSError as exc:
            log.error("event log: %s", exc)
