"""MQTT outbox: every accepted event is kept on disk until the broker acknowledged it.

The journal is a JSON-lines file of two kinds of records, appended in order::

    {"op":"add","id":"<key>","topic":"d2stream/door/events","payload":"<event JSON>"}
    {"op":"ack","id":"<key>"}

Messages not acknowledged yet (*pending*) are replayed in the order they were added, after a
reconnection or after a restart; a key already pending or recently acknowledged is not added
again (deduplication: an event offered twice is published once). On open, a partial last line
(a power cut mid-write) is cut off, every complete line before it is kept, and the journal is
compacted (rewritten with the pending messages only, atomically).

Bounds: pending messages take at most ``max_bytes`` (in memory and on disk); beyond that the
*oldest* are dropped, counted and logged. The journal file is compacted before it grows past
twice ``max_bytes``. When the journal cannot be written (disk full, read-only), the outbox goes
on in memory (same bound), reports it, and rewrites the journal as soon as writing works again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.sinks.jsonl import JsonlWriter, repair_tail

log = logging.getLogger(__name__)

KEEP_ACKED = 1000
RETRY_INTERVAL_S = 2.0
_NO_ROTATION = 1 << 62


@dataclass(frozen=True)
class Message:
    """One message to deliver: ``key`` (unique), MQTT ``topic`` and ``payload`` text."""

    key: str
    topic: str
    payload: str

    def record(self) -> str:
        return json.dumps({"op": "add", "id": self.key, "topic": self.topic,
                           "payload": self.payload}, separators=(",", ":"), ensure_ascii=False)


def message_key(event: Any) -> str:
    """The deduplication key of an event message: its ``message_id`` if it has one, else
    ``<event_id>:<digest of its JSON>`` (an event's start, updates and end share the event id
    but not their JSON: each message gets its own key, and the same message twice the same)."""
    explicit = getattr(event, "message_id", None)
    if explicit:
        return str(explicit)
    digest = hashlib.sha1(event.json.encode("utf-8")).hexdigest()[:20]
    event_id = getattr(event, "event_id", None)
    return f"{event_id}:{digest}" if event_id else f"sha1:{digest}"


class Outbox:
    """Pending messages, mirrored to a journal file (``path=None``: memory only).

    Not thread-safe: one sink thread owns it.
    """

    def __init__(self, path: Path | None, max_bytes: int, fsync: str = "always",
                 fsync_interval_s: float = 1.0, max_messages: int | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self._writer = None if path is None else JsonlWriter(
            self.path, _NO_ROTATION, 0, fsync, fsync_interval_s)
        self._pending: OrderedDict[str, tuple[Message, int]] = OrderedDict()
        self._pending_bytes = 0
        self._acked: OrderedDict[str, None] = OrderedDict()
        self.journal_ok = path is None
        self.journal_error: str | None = None
        self._next_retry = 0.0
        self.stats = {"added": 0, "acked": 0, "dropped": 0, "duplicates": 0, "replayed": 0,
                      "journal_errors": 0, "corrupt_lines": 0}

    # -- open / close --------------------------------------------------------------------------
    def open(self) -> None:
        """Load the journal (if any), then compact it; a failure leaves the outbox in memory."""
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            removed = repair_tail(self.path)
            if removed:
                log.warning("outbox %s: removed a partial last line (%d bytes)", self.path,
                            removed)
            self._load(self.path)
        except OSError as exc:
            self._journal_failed(exc)
            return
        self.stats["replayed"] = len(self._pending)
        if self._pending:
            log.info("outbox %s: %d message(s) from before the restart to deliver", self.path,
                     len(self._pending))
        self._compact()

    def _load(self, path: Path) -> None:
        if not path.exists():
            return
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    op, key = record["op"], str(record["id"])
                    message = Message(key, str(record["topic"]), str(record["payload"])) \
                        if op == "add" else None
                except (ValueError, KeyError, TypeError):
                    self.stats["corrupt_lines"] += 1
                    continue
                if message is not None and key not in self._acked:
                    self._remember(message)
                elif op == "ack":
                    self._forget(key)

    def close(self) -> None:
        if self._writer is not None and self.journal_ok:
            try:
                self._writer.close()
            except OSError as exc:
                log.error("outbox %s: %s", self.path, exc)

    # -- messages ------------------------------------------------------------------------------
    def add(self, messages: Iterable[Message]) -> int:
        """Accept messages (journal first: one write, fsync per policy); returns how many were
        new (the others were duplicates)."""
        fresh = []
        for message in messages:
            if message.key in self._pending or message.key in self._acked:
                self.stats["duplicates"] += 1
                continue
            self._remember(message)
            fresh.append(message)
        if not fresh:
            return 0
        self.stats["added"] += len(fresh)
        self._append([m.record() for m in fresh])
        self._enforce_bound()
        return len(fresh)

    def ack(self, key: str) -> None:
        """The broker has the message: forget it (the journal records it, without fsync)."""
        if key not in self._pending:
            return
        self._forget(key)
        self.stats["acked"] += 1
        self._append([json.dumps({"op": "ack", "id": key}, separators=(",", ":"))], sync=False)
        if self._writer is not None and self.journal_ok and \
                self._writer.size > max(2 * self._pending_bytes, min(self.max_bytes, 1 << 20)):
            self._compact()

    def pending(self, skip: set[str] | None = None) -> Iterator[Message]:
        """Pending messages in order, except the keys in ``skip`` (do not change the outbox
        while iterating)."""
        for key, (message, _) in self._pending.items():
            if not skip or key not in skip:
                yield message

    def __len__(self) -> int:
        return len(self._pending)

    def retry(self) -> None:
        """Rewrite the journal if it failed before and the retry interval has passed."""
        if self._writer is not None and not self.journal_ok \
                and time.monotonic() >= self._next_retry:
            self._compact()

    def view(self) -> dict[str, Any]:
        size = self._writer.size if self._writer is not None and self.journal_ok else 0
        return {"outbox_pending": len(self._pending), "outbox_pending_bytes": self._pending_bytes,
                "outbox_file_bytes": size, "outbox_journal_ok": int(self.journal_ok),
                **{f"outbox_{k}": v for k, v in self.stats.items()}}

    # -- internals -----------------------------------------------------------------------------
    def _remember(self, message: Message) -> None:
        size = len(message.record().encode("utf-8")) + 1
        self._pending[message.key] = (message, size)
        self._pending_bytes += size

    def _forget(self, key: str) -> None:
        entry = self._pending.pop(key, None)
        if entry is not None:
            self._pending_bytes -= entry[1]
        self._acked[key] = None
        while len(self._acked) > KEEP_ACKED:
            self._acked.popitem(last=False)

    def _enforce_bound(self) -> None:
        """Drop the oldest pending messages while they take more than ``max_bytes`` (or are
        more than ``max_messages``), down to 90 % of the bound."""
        count_limit = self.max_messages or len(self._pending)
        if self._pending_bytes <= self.max_bytes and len(self._pending) <= count_limit:
            return
        target, dropped = int(self.max_bytes * 0.9), 0
        count_target = int(count_limit * 0.9) if self.max_messages else count_limit
        while self._pending and (self._pending_bytes > target
                                 or len(self._pending) > count_target):
            _, (_, size) = self._pending.popitem(last=False)
            self._pending_bytes -= size
            dropped += 1
        self.stats["dropped"] += dropped
        log.warning("outbox: full (max %d bytes%s); dropped the %d oldest message(s) (%d "
                    "dropped so far)", self.max_bytes,
                    f", {self.max_messages} messages" if self.max_messages else "", dropped,
                    self.stats["dropped"])
        self._compact()

    def _append(self, lines: list[str], sync: bool = True) -> None:
        if self._writer is None or not self.journal_ok:
            return
        try:
            self._writer.write_lines(lines, sync=sync)
        except OSError as exc:
            self._journal_failed(exc)

    def _compact(self) -> None:
        """Rewrite the journal with the pending messages and recent acks (atomic rename)."""
        if self._writer is None or self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self._writer.close_quietly()
            self.path.parent.mkdir(parents=True, exist_ok=True)  # made again if it vanished
            lines = [json.dumps({"op": "ack", "id": k}, separators=(",", ":"))
                     for k in self._acked]
            lines += [m.record() for m, _ in self._pending.values()]
            write_file_durably(tmp, lines)
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
            self._writer.open()
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            self._journal_failed(exc)
            return
        if self.journal_error is not None:
            log.warning("outbox %s: writable again; journal rewritten with %d pending "
                        "message(s)", self.path, len(self._pending))
        self.journal_ok, self.journal_error = True, None

    def _journal_failed(self, exc: OSError) -> None:
        self.stats["journal_errors"] += 1
        self._next_retry = time.monotonic() + RETRY_INTERVAL_S
        if self._writer is not None:
            self._writer.close_quietly()
        if self.journal_ok or self.journal_error is None:
            log.error("outbox %s: cannot write (%s); keeping messages in memory until it "
                      "works again", self.path, exc.strerror or exc)
        self.journal_ok, self.journal_error = False, f"outbox: {exc.strerror or exc}"


def write_file_durably(path: Path, lines: list[str]) -> None:
    """Write ``lines`` to a new file and fsync it (raises ``OSError``; may leave ``path``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        data = "".join(f"{line}\n" for line in lines).encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
