"""Event clips, cut on demand from the segments: ``start - pre`` to ``end + post``.

Segments are joined with ffmpeg's concat demuxer and copied (no re-encoding) into a plain MP4
with ``faststart`` (the index first, so a browser plays while it downloads). The cut starts at
the keyframe at or before ``start - pre`` (at most one keyframe interval early). Clips of ended
events are cached by the segments they were cut from.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import threading
import time
from pathlib import Path

from daemon.recordings.db import EventDB, Segment, wall_time

log = logging.getLogger(__name__)

CUT_TIMEOUT_S = 120.0


def clip_window(event: dict, pre: float, post: float,
                now: float | None = None) -> tuple[float, float]:
    start = wall_time(event["start_time"])
    end = wall_time(event.get("end_time")) or (time.time() if now is None else now)
    assert start is not None
    return start - pre, end + post


def make_clip(db: EventDB, ffmpeg: str, event: dict, pre: float, post: float,
              cache_dir: Path) -> Path | None:
    """The event's clip file (cut now or cached); ``None`` when no footage covers it."""
    begin, finish = clip_window(event, pre, post)
    segments = db.segments(event["camera"], begin, finish)
    segments = _contiguous([s for s in segments if Path(s.path).is_file()])
    if not segments:
        return None
    # an open event (or one whose post-capture is still being recorded) gets what is on disk:
    # the same clip, byte for byte, until the next segment is indexed (range requests agree)
    finish = min(finish, segments[-1].end_time)
    key = hashlib.sha1(repr([(s.path, s.end_time) for s in segments] + [begin, finish])
                       .encode()).hexdigest()[:16]
    out = cache_dir / f"{event['id']}-{key}.mp4"
    if out.is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    _cut(ffmpeg, segments, begin, finish, out)
    return out if out.is_file() else None


def _cut(ffmpeg: str, segments: list[Segment], begin: float, finish: float, out: Path) -> None:
    unique = f".{os.getpid()}-{threading.get_ident()}"
    listing = out.with_suffix(unique + ".txt")
    listing.write_text("".join(f"file '{_quote(s.path)}'\n" for s in segments),
                       encoding="utf-8")
    offset = max(0.0, begin - segments[0].start_time)
    length = sum(min(s.end_time, finish) - max(s.start_time, begin) for s in segments)
    tmp = out.with_suffix(unique + ".tmp.mp4")
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat",
           "-safe", "0", "-ss", f"{offset:.3f}", "-i", str(listing), "-t", f"{length:.3f}",
           "-map", "0:v:0", "-c", "copy", "-movflags", "+faststart",
           "-avoid_negative_ts", "make_zero", str(tmp)]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=CUT_TIMEOUT_S)
        if done.returncode == 0:
            os.replace(tmp, out)
        else:
            log.warning("clip %s: ffmpeg: %s", out.name,
                        done.stderr.decode(errors="replace").strip()[-300:])
    except (subprocess.TimeoutExpired, OSError) as exc:
        log.warning("clip %s not cut: %s", out.name, exc)
    finally:
        tmp.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def _contiguous(segments: list[Segment]) -> list[Segment]:
    """Without segments overlapping the one before (two recorders of a camera at once)."""
    out: list[Segment] = []
    for seg in segments:
        if not out or seg.start_time >= out[-1].end_time - 0.5:
            out.append(seg)
    return out


def _quote(path: str) -> str:
    return path.replace("'", "'\\''")


def prune_clips(cache_dir: Path, max_age_s: float = 3600.0) -> None:
    """Remove cached clips not served for ``max_age_s``."""
    now = time.time()
    for path in cache_dir.glob("*.mp4"):
        try:
            if now - path.stat().st_atime > max_age_s and now - path.stat().st_mtime > max_age_s:
                path.unlink()
        except OSError:
            pass


def thumbnail(db: EventDB, ffmpeg: str, event: dict, cache_dir: Path) -> bytes | None:
    """A JPEG of the event from its footage (at its best frame, else its start), for events
    without a snapshot file (snapshots off, or the event still open)."""
    best = event.get("best") or {}
    moment = wall_time(best.get("time") or event["start_time"])
    assert moment is not None
    found = [s for s in db.segments(event["camera"], moment, moment + 0.001)
             if Path(s.path).is_file()]
    if not found:
        return None
    segment = found[0]
    out = cache_dir / f"{event['id']}-{segment.id}-{moment:.3f}.jpg"
    if out.is_file():
        return out.read_bytes()
    # the segment's last frame is up to a frame interval before its end: stay clear of it,
    # and take its first frame when nothing comes out at the offset
    offset = min(moment - segment.start_time, segment.end_time - segment.start_time - 0.5)
    for seek in dict.fromkeys((max(0.0, offset), 0.0)):
        data = _frame_at(ffmpeg, segment.path, seek)
        if data is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            return data
    return None


def _frame_at(ffmpeg: str, path: str, seek: float) -> bytes | None:
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-ss", f"{seek:.3f}",
           "-i", path, "-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "pipe:1"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=CUT_TIMEOUT_S)
    except (subprocess.TimeoutExpired, OSError):
        return None
    ok = done.returncode == 0 and done.stdout.startswith(b"\xff\xd8")
    return done.stdout if ok else None
