"""Retention of events and footage, and the disk budget.

- events older than ``record.events_retain_days`` go with their snapshot;
- a segment goes once nothing needs it: no event window ``[start - pre, end + post]`` of its
  camera overlaps it and, in ``continuous`` mode, it is older than ``retain_days`` (in
  ``events`` mode a segment is kept until no event starting later could still need it);
- beyond ``recordings.max_bytes`` or below ``min_free_bytes`` of free space the oldest
  footage goes first, whatever it belongs to. The database is never deleted.

A row never outlives its file: the row goes in the same pass, after the file.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from daemon.config.record_schema import RecordSection
from daemon.config.schema import RecordingsOutput
from daemon.recordings.db import EventDB

log = logging.getLogger(__name__)

DAY_S = 86400.0
#: how long after a segment's end an event could still start and need it (beyond pre-capture)
DECIDE_MARGIN_S = 60.0
WARN_EVERY_S = 60.0


class Pruner:
    """Deletes what retention and the disk budget say (thread-safe)."""

    def __init__(self, db: EventDB, out: RecordingsOutput, records: Mapping[str, RecordSection],
                 snapshot_dir: Path | None) -> None:
        self.db = db
        self.out = out
        self.records = dict(records)
        self.snapshot_dir = snapshot_dir
        self.disk_full_deleted = 0
        self.low_space: str | None = None
        self.free_bytes: int | None = None
        self._warned = -WARN_EVERY_S
        self._lock = threading.Lock()

    def run(self, now: float | None = None) -> int:
        """One pass; returns how many segments were deleted."""
        now = time.time() if now is None else now
        with self._lock:
            self._expire_events(now)
            removed = sum(self._expire_segments(camera, record, now)
                          for camera, record in self.records.items())
            return removed + self._enforce_budget()

    def _expire_events(self, now: float) -> None:
        for camera, record in self.records.items():
            if record.events_retain_days <= 0:
                continue
            cutoff = now - record.events_retain_days * DAY_S
            rows = self.db.conn.execute(
                "SELECT id FROM events WHERE camera = ? AND start_time < ? AND end_time IS NOT "
                "NULL", (camera, cutoff)).fetchall()
            for (event_id,) in rows:
                snapshot = self.db.delete_event(event_id)
                self.remove_snapshot(snapshot)

    def remove_snapshot(self, snapshot: str | None) -> None:
        """Delete an event's snapshot file (only inside the snapshots folder)."""
        if not snapshot or self.snapshot_dir is None:
            return
        path = Path(snapshot)
        if path.resolve().is_relative_to(self.snapshot_dir.resolve()):
            path.unlink(missing_ok=True)

    def _expire_segments(self, camera: str, record: RecordSection, now: float) -> int:
        decide_before = now - record.pre_capture_s - DECIDE_MARGIN_S
        keep_after = now - record.retain_days * DAY_S if record.mode == "continuous" else now
        rows = self.db.conn.execute(
            "SELECT s.id, s.path FROM segments s WHERE s.camera = ? AND s.end_time < ?"
            " AND s.start_time < ? AND NOT EXISTS (SELECT 1 FROM events e WHERE"
            " e.camera = s.camera AND e.start_time - ? <= s.end_time"
            " AND COALESCE(e.end_time, ?) + ? >= s.start_time)",
            (camera, decide_before, keep_after, record.pre_capture_s, now,
             record.post_capture_s)).fetchall()
        return self._delete(rows)

    def _enforce_budget(self) -> int:
        removed = 0
        while True:
            reason = self._over_budget()
            if reason is None:
                self.low_space = None
                return removed
            rows = self._oldest()
            if not rows:
                self.low_space = f"{reason}, and no footage is left to delete"
                return removed
            if time.monotonic() - self._warned >= WARN_EVERY_S:
                self._warned = time.monotonic()
                log.warning("recordings: %s; deleting the oldest footage (logged at most once "
                            "a minute)", reason)
            self.low_space = reason
            removed += self._delete(rows)
            self.disk_full_deleted += len(rows)

    def _oldest(self) -> list[tuple[int, str]]:
        """The oldest segments whose deletion brings the footage under ``max_bytes`` (at
        least one: for free space, one at a time, the disk checked again after each)."""
        excess = self.db.footage_bytes() - self.out.max_bytes if self.out.max_bytes else 0
        rows = self.db.conn.execute(
            "SELECT id, path, bytes FROM segments ORDER BY start_time LIMIT 100").fetchall()
        chosen: list[tuple[int, str]] = []
        for segment_id, path, size in rows:
            chosen.append((segment_id, path))
            excess -= size
            if excess <= 0:
                break
        return chosen

    def _over_budget(self) -> str | None:
        out = self.out
        if out.max_bytes and self.db.footage_bytes() > out.max_bytes:
            return f"footage over recordings.max_bytes ({out.max_bytes} bytes)"
        try:
            free = shutil.disk_usage(out.dir).free
        except OSError:
            return None
        self.free_bytes = free
        if free < out.min_free_bytes:
            return (f"free space {free} bytes below recordings.min_free_bytes "
                    f"({out.min_free_bytes})")
        headroom = 2 * self._largest_segment()
        if free < headroom:  # the next segments would not fit: a full disk is near
            return f"disk nearly full ({free} bytes free, segments up to {headroom // 2})"
        return None

    def _largest_segment(self) -> int:
        row = self.db.conn.execute("SELECT MAX(bytes) FROM segments").fetchone()
        return int(row[0] or 0)

    def _delete(self, rows: list[tuple[int, str]]) -> int:
        for _, path in rows:
            try:
                Path(path).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("recordings: cannot delete %s: %s", path, exc.strerror or exc)
        self.db.delete_segments([row[0] for row in rows])
        return len(rows)
