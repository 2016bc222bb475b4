"""The event database: SQLite in WAL mode (stdlib ``sqlite3``), one connection per thread.

Events are upserted from their messages as they pass (``start``/``update``/``end``), footage
segments are indexed as the recorders close them. Times are UNIX seconds (``REAL``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.recordings.migrations import DatabaseError, migrate
from daemon.structures.messages import EventMessage

BUSY_TIMEOUT_MS = 10_000


def wall_time(iso: str | None) -> float | None:
    """UNIX seconds of an event message's ``2026-01-02T03:04:05.678Z`` (``None`` stays)."""
    if iso is None:
        return None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Segment:
    id: int
    camera: str
    path: str
    start_time: float
    end_time: float
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "camera": self.camera, "file": Path(self.path).name,
                "start_time": self.start_time, "end_time": self.end_time,
                "duration": round(self.end_time - self.start_time, 3), "bytes": self.bytes}


class EventDB:
    """One process's access to the database file: a connection per thread, opened lazily."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self.previous_version = self._init()

    def _init(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseError(f"cannot open {self.path}: {exc}") from None
        try:
            return migrate(conn, str(self.path))
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # an accepted event survives a power cut
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- events ------------------------------------------------------------------------------
    def upsert(self, messages: list[EventMessage], now: float) -> None:
        """Store the state every message carries (one transaction for all)."""
        with self.transaction() as conn:
            for message in messages:
                _upsert_one(conn, message, now)

    def open_events(self) -> list[dict[str, Any]]:
        """The last state of every event without an end (left open by a crash)."""
        rows = self.conn.execute("SELECT state FROM events WHERE end_time IS NULL "
                                 "ORDER BY start_time").fetchall()
        return [json.loads(row[0]) for row in rows]

    def event(self, event_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT state, end_reason FROM events WHERE id = ?",
                                (event_id,)).fetchone()
        return None if row is None else _with_reason(row)

    def delete_event(self, event_id: str) -> str | None:
        """Remove an event; returns its snapshot path (``None`` when unknown or none)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT snapshot FROM events WHERE id = ?",
                               (event_id,)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM events WHERE id = ?", (event_id,))
            return row[0] or ""

    def query_events(self, where: str, params: list[Any], limit: int) -> list[dict[str, Any]]:
        sql = ("SELECT state, end_reason FROM events e" + (f" WHERE {where}" if where else "")
               + " ORDER BY start_time DESC, id DESC LIMIT ?")
        return [_with_reason(row) for row in self.conn.execute(sql, [*params, limit])]

    # -- segments ----------------------------------------------------------------------------
    def add_segment(self, camera: str, path: Path, start: float, end: float, size: int,
                    encoded: bool) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO segments (camera, path, start_time, end_time, "
                         "bytes, encoded) VALUES (?, ?, ?, ?, ?, ?)",
                         (camera, str(path), start, end, size, int(encoded)))

    def shift_run(self, camera: str, prefix: str, delta: float) -> None:
        """Move the times of the segments whose path starts with ``prefix`` by ``delta``."""
        with self.transaction() as conn:
            conn.execute("UPDATE segments SET start_time = start_time + ?, end_time = end_time"
                         " + ? WHERE camera = ? AND substr(path, 1, ?) = ?",
                         (delta, delta, camera, len(prefix), prefix))

    def segments(self, camera: str | None, after: float | None, before: float | None,
                 limit: int = 10_000) -> list[Segment]:
        """Segments overlapping ``[after, before]``, oldest first."""
        clauses, params = [], []
        if camera is not None:
            clauses.append("camera = ?")
            params.append(camera)
        if after is not None:
            clauses.append("end_time > ?")
            params.append(after)
        if before is not None:
            clauses.append("start_time < ?")
            params.append(before)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.conn.execute(
            "SELECT id, camera, path, start_time, end_time, bytes FROM segments" + where
            + " ORDER BY start_time LIMIT ?", [*params, limit]).fetchall()
        return [Segment(*row) for row in rows]

    def segment_paths(self, camera: str) -> set[str]:
        rows = self.conn.execute("SELECT path FROM segments WHERE camera = ?", (camera,))
        return {row[0] for row in rows}

    def last_segment_end(self, camera: str) -> float | None:
        row = self.conn.execute("SELECT MAX(end_time) FROM segments WHERE camera = ?",
                                (camera,)).fetchone()
        return None if row is None else row[0]

    def delete_segments(self, ids: list[int]) -> None:
        with self.transaction() as conn:
            conn.executemany("DELETE FROM segments WHERE id = ?", [(i,) for i in ids])

    def footage_bytes(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(SUM(bytes), 0) FROM segments")
                   .fetchone()[0])


def _with_reason(row: tuple[str, str | None]) -> dict[str, Any]:
    state = json.loads(row[0])
    if row[1] is not None:
        state["end_reason"] = row[1]
    return state


def _upsert_one(conn: sqlite3.Connection, message: EventMessage, now: float) -> None:
    after = message.after
    start = wall_time(after["start_time"])
    end = wall_time(after.get("end_time")) if message.type == "end" else None
    best = after.get("best") or {}
    conn.execute(
        "INSERT INTO events (id, camera, label, start_time, end_time, top_score, box, snapshot,"
        " end_reason, state, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET label = excluded.label, end_time = excluded.end_time,"
        " top_score = excluded.top_score, box = excluded.box, snapshot = excluded.snapshot,"
        " end_reason = excluded.end_reason, state = excluded.state, updated = excluded.updated",
        (message.event_id, message.camera, after["label"], start, end, after.get("top_score"),
         json.dumps(best.get("box") or after.get("box")), after.get("snapshot"),
         after.get("end_reason"), json.dumps(after, separators=(",", ":")), now))
    conn.executemany("INSERT OR IGNORE INTO event_zones (event_id, zone) VALUES (?, ?)",
                     [(message.event_id, zone) for zone in after.get("entered_zones") or []])
