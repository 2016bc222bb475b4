"""A stream that cannot be remuxed into MP4 (MJPEG over HTTP) is recorded by encoding the
captured frames instead, and the daemon says so once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.daemon.daemon_helpers import DaemonProcess, require_program, wait_until, write_yaml
from tests.daemon.mjpeg_server import MjpegCamera
from tests.daemon.recordings.rec_helpers import api_json, decodes, recording_config


def test_mjpeg_stream_falls_back_to_encoding(tmp_path: Path, demo_model) -> None:  # noqa: ANN001
    with MjpegCamera(per_connection=10**9, fps=10) as camera:
        config = recording_config(demo_model, {"name": "cam", "source": {
            "type": "opencv", "url": camera.url}}, tmp_path, record={"mode": "continuous"})
        port = config["outputs"]["http"]["port"]
        daemon = DaemonProcess(write_yaml(tmp_path / "config.yaml", config), tmp_path)
        try:
            def segments() -> list:
                try:
                    return api_json(port, "/api/recordings?camera=cam")["segments"]
                except (OSError, AssertionError):
                    return []
            assert wait_until(lambda: len(segments()) >= 3, 240, 0.5), daemon.stderr()
        finally:
            daemon.terminate()
    warnings = [line for line in daemon.stderr().splitlines() if "cannot be remuxed" in line]
    assert len(warnings) == 1 and "(mjpeg)" in warnings[0], daemon.stderr()
    ffprobe = require_program("ffprobe")
    for seg in segments_on_disk(tmp_path):
        info = json.loads(subprocess.run(
            [ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "json",
             str(seg)], capture_output=True, text=True, timeout=60).stdout)
        assert info["streams"][0]["codec_name"] == "h264"
        assert decodes(seg)


def segments_on_disk(workdir: Path) -> list[Path]:
    found = sorted((workdir / "rec" / "cam").glob("*.mp4"))
    assert found
    return found
