"""Event database sink: every event message upserted into SQLite as it passes
(:mod:`daemon.recordings.db`). A plain consumer of event messages, like the event log.

When the database cannot be written (disk full), the messages wait in memory (at most
``BACKLOG`` of them, oldest dropped and counted), ``/healthz`` reports it, and writing is
retried when the sink is idle.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections import deque

from daemon.config.errors import ConfigError
from daemon.config.schema import DatabaseOutput
from daemon.recordings.db import EventDB
from daemon.recordings.migrations import DatabaseError
from daemon.sinks.base import EventsOnly, Sink
from daemon.sinks.event_journal import Entry, Journal, register_consumer
from daemon.structures.messages import EventMessage
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult

log = logging.getLogger(__name__)

BACKLOG = 10_000
BATCH = 500
RETRY_INTERVAL_S = 1.0


class EventDbSink(Sink):
    """Upserts ``result.events`` into ``outputs.database.path``."""

    name = "database"

    def __init__(self, config: DatabaseOutput, queue_size: int, metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.db: EventDB | None = None
        self.backlog: deque[EventMessage] = deque()

    def keep(self, result: FrameResult) -> EventsOnly:
        return EventsOnly.of(result)

    def wants(self, result: FrameResult) -> bool:
        return bool(result.events)

    def open(self) -> None:
        try:
            self.db = EventDB(self.config.path)
        except DatabaseError as exc:
            raise ConfigError(str(exc), key="outputs.database.path") from None
        self.report_working()

    def handle(self, result: FrameResult | EventsOnly) -> None:  # type: ignore[override]
        self.backlog.extend(result.events)
        overflow = len(self.backlog) - BACKLOG
        for _ in range(max(0, overflow)):
            self.backlog.popleft()
        if overflow > 0:
            self.metrics.faults.sink_add(self.name, "backlog_dropped", overflow)
        self._flush()

    def idle(self) -> None:
        if self.backlog:
            self._flush()

    def close(self) -> None:
        if self.backlog:
            self._flush()
        if self.backlog:
            log.error("database: %d event message(s) not stored before stopping",
                      len(self.backlog))
        if self.db is not None:
            self.db.close()

    def _flush(self) -> None:
        assert self.db is not None
        try:
            self.db.upsert(list(self.backlog), time.time())
        except sqlite3.Error as exc:
            self.metrics.faults.sink_add(self.name, "write_errors")
            self.report_failure(f"cannot write {self.config.path}: {exc}; "
                                f"{len(self.backlog)} message(s) waiting in memory")
            return
        self.backlog.clear()
        self.report_working()


def _message(entry: Entry) -> EventMessage:
    data = json.loads(entry.payload)
    return EventMessage(data["type"], data.get("before"), data["after"], entry.payload)


@register_consumer("database")
class JournalEventDbSink(Sink):
    """The event database as a journal consumer: messages from its ``database`` cursor, each
    batch upserted in one transaction, then acknowledged. A crash between the two replays the
    batch, which upserting makes harmless (the same states again, in order). The database
    catches up with the journal at start (``open``), before events a crash left open are ended
    from it, so an event that did end is not ended twice."""

    name = "database"
    idle_interval = 0.1

    def __init__(self, config: DatabaseOutput, journal: Journal, metrics: Metrics) -> None:
        super().__init__(1, metrics)
        self.config = config
        self.db: EventDB | None = None
        self.cursor = journal.cursor(self.name)
        self._next_retry = 0.0

    def wants(self, result: FrameResult) -> bool:
        return False  # events come from the journal

    def handle(self, result: FrameResult) -> None:  # never offered anything
        return None

    def open(self) -> None:
        try:
            self.db = EventDB(self.config.path)
        except DatabaseError as exc:
            raise ConfigError(str(exc), key="outputs.database.path") from None
        self.idle()  # caught up before the pipeline starts
        self.db.close()  # this thread's connection; the sink thread opens its own

    def idle(self) -> None:
        if time.monotonic() < self._next_retry:
            return
        assert self.db is not None
        try:
            while batch := self.cursor.read_batch(BATCH):
                self.db.upsert([_message(e) for e in batch], time.time())
                self.cursor.ack(batch[-1].seq)
        except sqlite3.Error as exc:
            self.cursor.rewind()
            self._next_retry = time.monotonic() + RETRY_INTERVAL_S
            self.metrics.faults.sink_add(self.name, "write_errors")
            self.report_failure(f"cannot write {self.config.path}: {exc}; messages wait in the "
                                "journal")
            return
        self.report_working()

    def close(self) -> None:
        self._next_retry = 0.0
        self.idle()
        if self.db is not None:
            self.db.close()
