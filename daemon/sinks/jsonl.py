"""Append-only JSON-lines file with size-based rotation, an fsync policy and no torn lines.

Lines are written with one ``write`` on an ``O_APPEND`` descriptor; if a write fails half-way
(disk full) the file is truncated back to its last complete line, and on open a partial last
line left by a power cut is cut off. Rotation renames ``events.jsonl`` -> ``events.jsonl.1`` ->
``events.jsonl.2`` ... keeping ``backups`` old files.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

_CHUNK = 1 << 16


def repair_tail(path: Path) -> int:
    """Cut a partial last line (no trailing newline) off ``path``; returns bytes removed."""
    if not path.exists():
        return 0
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            fh.seek(start)
            newline = fh.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        fh.truncate(keep)
        os.fsync(fh.fileno())
        return size - keep


class JsonlWriter:
    """Writes text lines to ``path``.

    Args:
        path: the current file.
        max_bytes: rotate before a write would make the file larger than this.
        backups: rotated files to keep (0: the file is truncated instead).
        fsync: ``always`` (after every write), ``interval`` (at most every ``fsync_interval_s``
            seconds, and at close) or ``never`` (left to the OS; still at close).
    """

    def __init__(self, path: Path, max_bytes: int, backups: int, fsync: str = "interval",
                 fsync_interval_s: float = 5.0) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self._fd: int | None = None
        self._size = 0
        self._last_sync = time.monotonic()
        self._dirty = False

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        removed = repair_tail(self.path)
        if removed:
            log.warning("%s: removed a partial last line (%d bytes)", self.path, removed)
        self._open_fd()

    def _open_fd(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size

    @property
    def size(self) -> int:
        """Bytes in the current file."""
        return self._size

    def write_lines(self, lines: Iterable[str], sync: bool = True) -> None:
        """Append complete lines (each without its newline) as one write; ``sync=False``
        skips the fsync policy for this write (the data is synced with a later one)."""
        data = "".join(f"{line}\n" for line in lines).encode("utf-8")
        if not data:
            return
        if self._fd is None:
            raise OSError(f"{self.path}: not open")
        if self._size and self._size + len(data) > self.max_bytes:
            self.rotate()
        self._write_all(data)
        self._dirty = True
        if not sync:
            return
        if self.fsync == "always" or (
            self.fsync == "interval"
            and time.monotonic() - self._last_sync >= self.fsync_interval_s
        ):
            self.sync()

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        start = self._size
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            os.ftruncate(self._fd, start)  # never leave a torn line behind
            raise
        self._size = start + len(data)

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = time.monotonic()

    def rotate(self) -> None:
        """Start a new file, shifting the old ones (``.1`` is the most recent)."""
        self.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._open_fd()
        log.info("%s: rotated", self.path)

    def close(self) -> None:
        """fsync and close (the descriptor is closed even when fsync fails, which raises)."""
        if self._fd is None:
            return
        try:
            self._dirty = True
            self.sync()
        finally:
            os.close(self._fd)
            self._fd = None

    def close_quietly(self) -> None:
        """Close after a failure, ignoring further errors (nothing more can be saved)."""
        try:
            self.close()
        except OSError:
            pass
