"""Retention of snapshot files: per-camera count, age and total size, oldest removed first."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retention:
    """Limits (0: none): ``max_files`` per camera folder, ``max_age_s`` seconds since a file
    was written, ``max_bytes`` for all cameras together."""

    max_files: int = 0
    max_age_s: float = 0.0
    max_bytes: int = 0


@dataclass(frozen=True)
class _File:
    path: Path
    mtime: float
    size: int


def _scan(root: Path, pattern: str) -> list[_File]:
    files = []
    for path in root.glob(f"*/{pattern}"):
        try:
            stat = path.stat()
        except OSError:
            continue  # removed meanwhile
        files.append(_File(path, stat.st_mtime, stat.st_size))
    files.sort(key=lambda f: (f.mtime, f.path.name))
    return files


def _doomed(files: list[_File], policy: Retention, now: float) -> set[Path]:
    doomed: set[Path] = set()
    if policy.max_age_s > 0:
        doomed |= {f.path for f in files if now - f.mtime > policy.max_age_s}
    if policy.max_files > 0:
        by_camera: dict[Path, list[_File]] = {}
        for f in files:
            if f.path not in doomed:
                by_camera.setdefault(f.path.parent, []).append(f)
        for kept in by_camera.values():
            doomed |= {f.path for f in kept[:max(0, len(kept) - policy.max_files)]}
    if policy.max_bytes > 0:
        remaining = [f for f in files if f.path not in doomed]
        total = sum(f.size for f in remaining)
        for f in remaining:  # oldest first
            if total <= policy.max_bytes:
                break
            doomed.add(f.path)
            total -= f.size
    return doomed


def prune(root: Path, policy: Retention, pattern: str = "*.jpg",
          now: float | None = None) -> list[Path]:
    """Delete the files ``root/<camera>/<pattern>`` beyond the limits; returns those removed."""
    if not root.is_dir():
        return []
    files = _scan(root, pattern)
    doomed = _doomed(files, policy, time.time() if now is None else now)
    removed = []
    for f in files:
        if f.path in doomed:
            try:
                f.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove old snapshot %s: %s", f.path, exc.strerror or exc)
                continue
            removed.append(f.path)
    return removed
