"""One durable journal of event messages, read by every output through its own cursor.

An event message is appended to the journal (SQLite in WAL mode, stdlib ``sqlite3``) *before*
any output sees it; each output then reads the journal from its own persisted position:

    journal = Journal(path); journal.open()
    journal.append([JournalMessage(key, camera, payload), ...])   # durable on return
    cursor = journal.cursor("event_log")
    batch = cursor.read_batch()        # entries after the cursor, in append order
    ...deliver them...
    cursor.ack(batch[-1].seq)          # persisted: after a crash, reading resumes here

A crash, an outage or a full disk on one output therefore never loses a message on another: each
resumes from its own position. Keys deduplicate (a message appended twice is stored once).
Outputs register a factory in ``CONSUMERS`` (``register_consumer``), so another consumer (an
event database, webhooks) is one more entry, not a new queue. Entries every cursor has passed
are deleted by ``trim``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "key TEXT NOT NULL UNIQUE, camera TEXT NOT NULL, payload TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    # an output's messages between sending and acknowledgement (MQTT QoS 2: packet id, phase)
    "CREATE TABLE IF NOT EXISTS inflight (name TEXT NOT NULL, seq INTEGER NOT NULL, "
    "packet_id INTEGER NOT NULL, phase TEXT NOT NULL, PRIMARY KEY (name, seq))",
)


@dataclass(frozen=True)
class JournalMessage:
    """A message to journal: unique ``key``, the ``camera`` it is about, ``payload`` JSON text."""

    key: str
    camera: str
    payload: str


@dataclass(frozen=True)
class Entry:
    """A journaled message and its position ``seq`` (increasing in append order)."""

    seq: int
    key: str
    camera: str
    payload: str


class Journal:
    """The journal database; thread-safe (one connection, one lock)."""

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        for statement in _SCHEMA:
            db.execute(statement)
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"journal {self.path} is not open")
        return self._db

    def append(self, messages: Iterable[JournalMessage]) -> int:
        """Store ``messages`` in one transaction (durable on return); returns how many were new."""
        rows = [(m.key, m.camera, m.payload) for m in messages]
        if not rows:
            return 0
        with self._appended:
            db = self._conn()
            before = db.total_changes
            self._transaction(lambda conn: conn.executemany(
                "INSERT OR IGNORE INTO messages (key, camera, payload) VALUES (?, ?, ?)", rows))
            self._appended.notify_all()
            return db.total_changes - before

    def read_after(self, seq: int, limit: int) -> list[Entry]:
        with self._lock:
            rows = self._conn().execute(
                "SELECT seq, key, camera, payload FROM messages WHERE seq > ? ORDER BY seq "
                "LIMIT ?", (seq, limit)).fetchall()
        return [Entry(*row) for row in rows]

    def last_seq(self) -> int:
        with self._lock:
            row = self._conn().execute("SELECT MAX(seq) FROM messages").fetchone()
        return int(row[0] or 0)

    def position(self, name: str) -> int:
        with self._lock:
            row = self._conn().execute("SELECT seq FROM cursors WHERE name = ?",
                                       (name,)).fetchone()
        return int(row[0]) if row else 0

    def set_position(self, name: str, seq: int) -> None:
        with self._lock:
            self._conn().execute(
                "INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                "SET seq = excluded.seq WHERE excluded.seq > cursors.seq", (name, seq))

    def inflight(self, name: str) -> list[tuple[int, int, str]]:
        """Output ``name``'s in-flight messages: ``(seq, packet id, phase)`` in seq order."""
        with self._lock:
            rows = self._conn().execute(
                "SELECT seq, packet_id, phase FROM inflight WHERE name = ? ORDER BY seq",
                (name,)).fetchall()
        return [(int(s), int(p), str(ph)) for s, p, ph in rows]

    def set_inflight(self, name: str, rows: list[tuple[int, int]], phase: str) -> None:
        """Record ``(seq, packet id)`` rows of output ``name`` in ``phase`` (one transaction,
        durable on return)."""
        with self._lock:
            self._transaction(lambda db: db.executemany(
                "INSERT OR REPLACE INTO inflight (name, seq, packet_id, phase) "
                "VALUES (?, ?, ?, ?)", [(name, seq, pid, phase) for seq, pid in rows]))

    def complete(self, name: str, seq: int) -> None:
        """Output ``name`` delivered everything up to ``seq``: its in-flight rows up to there
        go and its cursor moves, in one transaction."""
        def run(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM inflight WHERE name = ? AND seq <= ?", (name, seq))
            db.execute("INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT(name) DO "
                       "UPDATE SET seq = excluded.seq WHERE excluded.seq > cursors.seq",
                       (name, seq))
        with self._lock:
            self._transaction(run)

    def _transaction(self, body: Callable[[sqlite3.Connection], Any]) -> None:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            body(db)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back itself (disk full)
                db.execute("ROLLBACK")
            raise

    def wait(self, after: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s for an entry past ``after``; whether there is one."""
        with self._appended:
            if self._last_locked() > after:
                return True
            self._appended.wait(timeout)
            return self._last_locked() > after

    def _last_locked(self) -> int:
        row = self._conn().execute("SELECT MAX(seq) FROM messages").fetchone()
        return int(row[0] or 0)

    def trim(self) -> int:
        """Delete the entries every registered cursor has acknowledged; returns how many."""
        with self._lock:
            db = self._conn()
            row = db.execute("SELECT MIN(seq), COUNT(*) FROM cursors").fetchone()
            if not row[1]:
                return 0
            return db.execute("DELETE FROM messages WHERE seq <= ?", (row[0],)).rowcount

    def cursor(self, name: str) -> Cursor:
        return Cursor(self, name)


class Cursor:
    """One output's position in the journal: ``read_batch`` what follows, ``ack`` when done."""

    def __init__(self, journal: Journal, name: str) -> None:
        self.journal = journal
        self.name = name
        self.acked = journal.position(name)
        self._read = self.acked
        journal.set_position(name, self.acked)  # registered: trim waits for this output

    def read_batch(self, limit: int = 500) -> list[Entry]:
        """Entries after the last one read (or acknowledged, after ``rewind``), in order."""
        batch = self.journal.read_after(self._read, limit)
        if batch:
            self._read = batch[-1].seq
        return batch

    def ack(self, seq: int) -> None:
        """Everything up to ``seq`` is delivered; persisted before returning."""
        if seq > self.acked:
            self.journal.set_position(self.name, seq)
            self.acked = seq
            self._read = max(self._read, seq)

    def moved(self, seq: int) -> None:
        """The journal already stored this cursor at ``seq`` (``Journal.complete``)."""
        self.acked = max(self.acked, seq)
        self._read = max(self._read, seq)

    def rewind(self) -> None:
        """Read again from the last acknowledged entry (after a failed delivery)."""
        self._read = self.acked

    def wait(self, timeout: float) -> bool:
        return self.journal.wait(self._read, timeout)


#: name -> factory(config, journal, metrics) of an output that reads the journal
CONSUMERS: dict[str, Callable[..., Any]] = {}


def register_consumer(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register the factory of journal consumer ``name`` (its cursor's name)."""
    def add(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in CONSUMERS:
            raise ValueError(f"journal consumer {name!r} registered twice")
        CONSUMERS[name] = factory
        return factory
    return add
