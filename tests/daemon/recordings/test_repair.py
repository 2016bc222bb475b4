"""A segment cut short by a killed recorder: its complete fragments are kept (real ffmpeg)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from daemon.recordings import ffmpeg
from tests.daemon.daemon_helpers import require_program
from tests.daemon.recordings.rec_helpers import decodes


def _fragmented(path: Path, seconds: int) -> None:
    subprocess.run([require_program("ffmpeg"), "-nostdin", "-v", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=160x120:rate=10", "-t", str(seconds), "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "10", "-movflags",
                    "+frag_keyframe+empty_moov+default_base_moof", str(path)], check=True,
                   timeout=60)


def test_a_truncated_segment_keeps_its_complete_fragments(tmp_path: Path) -> None:
    path = tmp_path / "1-000003.mp4"
    _fragmented(path, 6)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # killed two thirds into the file
    duration = ffmpeg.repair("ffmpeg", "ffprobe", path)
    assert 2.0 <= duration < 6.0
    assert path.is_file() and decodes(path)
    assert ffmpeg.probe("ffprobe", str(path), 30).duration == duration


def test_an_unreadable_segment_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "1-000004.mp4"
    _fragmented(path, 2)
    path.write_bytes(path.read_bytes()[:600])  # the header, no complete fragment
    assert ffmpeg.repair("ffmpeg", "ffprobe", path) == 0.0
    assert not path.exists() and not list(tmp_path.glob("*.repair.mp4"))
