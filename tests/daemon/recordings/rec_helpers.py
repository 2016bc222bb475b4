"""Helpers of the recording tests: a daemon with the database, recordings and the HTTP API."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.daemon.daemon_helpers import daemon_config, free_port, require_program

TOKEN = "review-test-token-0123456789"


def recording_config(model: Path, camera: dict[str, Any], workdir: Path,
                     **extra: Any) -> dict[str, Any]:
    """Daemon config: ``camera``, HTTP on a free port with a token, database, recordings (2 s
    segments, 2 s pre/post capture), snapshots."""
    port = free_port()
    config = daemon_config(model, workdir / "unused.avi", **{
        "cameras": [camera],
        "record": {"mode": "events", "pre_capture_s": 2, "post_capture_s": 2},
        "outputs": {"http": {"enabled": True, "port": port, "token": TOKEN},
                    "database": {"enabled": True, "path": "events.db"},
                    "recordings": {"enabled": True, "dir": "rec", "segment_s": 2,
                                   "min_free_bytes": 0, "prune_interval_s": 1},
                    "snapshots": {"enabled": True, "dir": "snaps"}},
        **extra})
    return config


def api(port: int, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` of a request with the test token."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def api_json(port: int, path: str) -> Any:
    status, _, body = api(port, path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def ended_events(port: int) -> list[dict[str, Any]]:
    try:
        events = api_json(port, "/api/events?limit=500")["events"]
    except (OSError, AssertionError):
        return []
    return [e for e in events if e["end_time"] is not None]


def probe_video(path: Path) -> tuple[float, int]:
    """``(duration s, decoded frames)`` of a video file, decoding every frame."""
    ffprobe = require_program("ffprobe")
    out = subprocess.run([ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=nb_read_frames:format=duration,format_name",
                          "-of", "json", str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    return float(info["format"]["duration"]), int(info["streams"][0]["nb_read_frames"])


def decodes(path: Path) -> bool:
    ffmpeg = require_program("ffmpeg")
    done = subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-f", "null",
                           "-"], capture_output=True, text=True, timeout=120)
    return done.returncode == 0 and not done.stderr.strip()
