"""Disk full: recordings and the event database on a small filesystem (a 3 MB tmpfs), the
camera recorded continuously at a high bit rate. The oldest footage goes first, the newest
is kept without gaps, every event stays in the database, and /healthz reports the deletions."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.daemon_helpers import DaemonProcess, read_jsonl, wait_until, write_yaml
from tests.daemon.h264_stream import H264HttpCamera, make_h264
from tests.daemon.recordings.rec_helpers import api, recording_config


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a 3 MB tmpfs for the disk-full test (needs root or "
                    f"CAP_SYS_ADMIN): {done.stderr.strip()}", pytrace=False)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _health(port: int) -> dict:
    return json.loads(api(port, "/healthz")[2])


def test_full_disk_deletes_the_oldest_footage(tmp_path, small_fs, demo_model,  # noqa: ANN001
                                              demo_video) -> None:
    video, _ = demo_video(100, seed=5)
    camera = H264HttpCamera(make_h264(video, tmp_path / "cam.mp4", crf=4)).start()
    config = recording_config(demo_model, {"name": "cam", "source": {
        "type": "opencv", "url": camera.url}}, tmp_path,
        record={"mode": "continuous"})
    config["outputs"]["database"]["path"] = str(small_fs / "events.db")
    config["outputs"]["recordings"]["dir"] = str(small_fs / "rec")
    port = config["outputs"]["http"]["port"]
    daemon = DaemonProcess(write_yaml(tmp_path / "config.yaml", config), tmp_path)
    try:
        def deleted() -> int:
            try:
                sink = _health(port)["faults"]["sinks"]["recordings"]
            except (OSError, KeyError, ValueError):
                return 0
            return int(sink.get("deleted_for_space", 0))
        assert wait_until(lambda: deleted() >= 10, 300, 1.0), daemon.stderr()
        assert "deleting the oldest footage" in daemon.stderr()
    finally:
        daemon.terminate()
        camera.stop()
    conn = sqlite3.connect(small_fs / "events.db")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT path FROM segments ORDER BY start_time").fetchall()
        stored = {row[0] for row in conn.execute("SELECT id FROM events")}
    finally:
        conn.close()
    runs: dict[str, list[int]] = {}
    for (path,) in rows:
        run, seq = Path(path).stem.split("-")
        runs.setdefault(run, []).append(int(seq))
        assert Path(path).is_file()
    assert len(runs) >= 1
    last_run = max(runs)
    kept = sorted(runs[last_run])
    assert kept[0] > 0, "the oldest segments should have gone first"
    assert kept == list(range(kept[0], kept[-1] + 1)), "the newest footage is kept, no gaps"
    logged = {m["after"]["id"] for m in read_jsonl(tmp_path / "events.jsonl")}
    assert logged and logged == stored  # every event is still in the database
