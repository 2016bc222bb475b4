"""Journal entries copied to a JSON-lines file exactly once, in order (the event log's way).

The file and the journal cannot change in one transaction, so a crash may come between writing
lines and acknowledging them. On open (and after a failed write) ``JsonlDelivery`` compares the
end of the file with the entries after its cursor: the ones already there are acknowledged, not
written again. Lines are never torn (``JsonlWriter`` truncates a failed write and repairs a
partial last line on open), so the end of the file is always whole entries.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from daemon.sinks.event_journal import Cursor, Entry
from daemon.sinks.jsonl import JsonlWriter

BATCH = 500


def _tail_lines(path: Path, max_bytes: int) -> list[str]:
    """The complete lines in the last ``max_bytes`` bytes of ``path`` (all of them if shorter)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - max_bytes)
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.decode("utf-8", errors="replace").split("\n")
    if start > 0:
        lines = lines[1:]  # the first one is cut
    return lines[:-1]  # after the last newline: "" or a partial line


def already_written(tail: list[str], pending: list[Entry]) -> int:
    """How many of ``pending`` (from the first) the file ends with."""
    for count in range(min(len(tail), len(pending)), 0, -1):
        if tail[-count:] == [entry.payload for entry in pending[:count]]:
            return count
    return 0


class JournalUnwritable(OSError):
    """The journal cannot record the output's progress (its disk is full): retried later, the
    lines already written are found in the file then (nothing written twice)."""


class JsonlDelivery:
    """Delivers the entries of ``cursor`` to ``writer``'s file."""

    def __init__(self, cursor: Cursor, writer: JsonlWriter) -> None:
        self.cursor = cursor
        self.writer = writer
        self._resync_needed = True

    def open(self) -> None:
        self.writer.open()
        self._resync()

    def _resync(self) -> None:
        pending = self.cursor.journal.read_after(self.cursor.acked, BATCH)
        budget = sum(len(e.payload.encode("utf-8")) + 1 for e in pending) + 1
        done = already_written(_tail_lines(self.writer.path, budget), pending)
        if done:
            self.cursor.ack(pending[done - 1].seq)
        self.cursor.rewind()
        self._resync_needed = False

    def pump(self) -> int:
        """Write the next batch; returns how many entries were delivered (OSError: none;
        ``JournalUnwritable``: the journal could not record it)."""
        try:
            return self._pump()
        except sqlite3.Error as exc:
            self._resync_needed = True
            self.cursor.rewind()
            raise JournalUnwritable(f"journal: {exc}") from None

    def _pump(self) -> int:
        if self._resync_needed:
            self._resync()
        batch = self.cursor.read_batch(BATCH)
        if not batch:
            return 0
        try:
            self.writer.write_lines([entry.payload for entry in batch])
        except OSError:
            self._resync_needed = True  # some lines may be in the file: look before retrying
            self.cursor.rewind()
            raise
        self.cursor.ack(batch[-1].seq)
        return len(batch)

    def close(self) -> None:
        self.writer.close()
