"""Event messages into the journal, before any output sees them.

While the journal cannot be written (its disk is full, its file read-only), new messages are
held in memory, at most ``HELD_MAX``, and journaled in order once appending works again; beyond
that the oldest held ones are refused, counted and logged. What the journal already holds is
never touched, and no output gets a message before it is journaled.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Iterable
from typing import Any

from daemon.sinks.event_journal import Journal, JournalMessage
from daemon.sinks.outbox import message_key
from daemon.structures.metrics import Metrics

log = logging.getLogger(__name__)

HELD_MAX = 10_000
TRIM_EVERY = 1000


class JournalFeed:
    """Appends event messages to ``journal`` (the pipeline's thread)."""

    def __init__(self, journal: Journal, metrics: Metrics, held_max: int = HELD_MAX) -> None:
        self.journal = journal
        self.metrics = metrics
        self.held_max = held_max
        self.held: deque[JournalMessage] = deque()
        self.failing = False
        self.refused = 0
        self._appends = 0

    def add(self, camera: str, events: Iterable[Any]) -> None:
        self.held.extend(JournalMessage(message_key(e), camera, e.json) for e in events)
        if not self.held:
            return
        try:
            self.journal.append(list(self.held))
        except sqlite3.Error as exc:
            self._failed(exc)
            return
        self.held.clear()
        self._appends += 1
        if self._appends % TRIM_EVERY == 0:
            self._trim()
        if self.failing:
            self.failing = False
            self.metrics.faults.sink_set("journal", "held", 0)
            self.metrics.faults.sink_recovered("journal")
            log.warning("journal %s: appending again; the held event messages are journaled",
                        self.journal.path)

    def _failed(self, exc: sqlite3.Error) -> None:
        over = len(self.held) - self.held_max
        for _ in range(max(0, over)):
            self.held.popleft()
        if over > 0:
            self.refused += over
            self.metrics.faults.sink_add("journal", "refused", over)
            log.error("journal %s: %d event message(s) refused (%d already held in memory; "
                      "%d refused so far)", self.journal.path, over, self.held_max, self.refused)
        self.metrics.faults.sink_set("journal", "held", len(self.held))
        self.failing = True
        if self.metrics.faults.sink_failed("journal", f"cannot append: {exc}"):
            log.error("journal %s: cannot append (%s); new event messages are held in memory "
                      "(at most %d) and journaled in order once it works again; no output gets "
                      "them meanwhile", self.journal.path, exc, self.held_max)

    def _trim(self) -> None:
        try:
            self.journal.trim()  # what every output has delivered
        except sqlite3.Error as exc:
            log.warning("journal %s: cannot trim (%s)", self.journal.path, exc)
