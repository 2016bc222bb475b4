"""Thumbnails cut from footage (real ffmpeg, real database)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon.recordings.clips import thumbnail
from daemon.recordings.db import EventDB
from daemon.structures.messages import iso_time
from tests.daemon.daemon_helpers import require_program

T0 = 1_800_000_000.0


def test_a_thumbnail_at_the_very_end_of_a_segment(tmp_path: Path) -> None:
    segment = tmp_path / "1-000000.mp4"
    subprocess.run([require_program("ffmpeg"), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=10", "-t", "2", "-c:v", "libx264", "-g", "10",
                    str(segment)], check=True, timeout=60)
    db = EventDB(tmp_path / "events.db")
    db.add_segment("cam", segment, T0, T0 + 2.0, segment.stat().st_size, False)
    event = {"id": "cam-1", "camera": "cam", "start_time": iso_time(T0 + 1.0),
             "best": {"time": iso_time(T0 + 1.98)}}  # after the segment's last frame (1.9)
    data = thumbnail(db, "ffmpeg", event, tmp_path / "cache")
    assert data is not None and data[:2] == b"\xff\xd8"
    assert thumbnail(db, "ffmpeg", event, tmp_path / "cache") == data  # cached
