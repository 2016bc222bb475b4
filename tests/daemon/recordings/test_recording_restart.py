"""A raw source (image folder) recorded by encoding; kill -9 during recording, then restart:
the database and the footage index agree, nothing recorded is lost, and the events left open
get ``end_reason: "restart"`` on the event log and on MQTT."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import cv2

from daemon.recordings.db import wall_time
from tests.daemon.daemon_helpers import DaemonProcess, read_jsonl, wait_until, write_yaml
from tests.daemon.mqtt_subscriber import Subscriber
from tests.daemon.recordings.rec_helpers import api, api_json, probe_video, recording_config


def _frames_folder(video: Path, folder: Path) -> Path:
    folder.mkdir()
    cap = cv2.VideoCapture(str(video))
    index = 0
    while True:
        ok, image = cap.read()
        if not ok:
            break
        cv2.imwrite(str(folder / f"{index:04d}.jpg"), image)
        index += 1
    cap.release()
    return folder


def _db(workdir: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(workdir / "events.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _footage(segments: list[dict], begin: float, finish: float) -> float:
    """Share of ``[begin, finish]`` the segments cover."""
    covered = sum(max(0.0, min(s["end_time"], finish) - max(s["start_time"], begin))
                  for s in segments)
    return covered / (finish - begin)


def _recording_with_an_open_event(http: int) -> bool:
    try:
        segs = api_json(http, "/api/recordings")["segments"]
        events = api_json(http, "/api/events?limit=500")["events"]
    except (OSError, AssertionError):
        return False
    return len(segs) >= 2 and any(e["end_time"] is None for e in events)


def _open_in_journal(workdir: Path) -> set[str]:
    """Events the journal started and did not end: the ones a kill left open. (The event
    database is one of the journal's readers and may lag it at the kill; it catches up first at
    the next start, so these are the events that then end with ``restart``.)"""
    (path,) = workdir.rglob("journal.db")
    conn = sqlite3.connect(path)
    try:
        messages = [json.loads(row[0]) for row in conn.execute("SELECT payload FROM messages")]
    finally:
        conn.close()
    started = {m["after"]["id"] for m in messages}
    return started - {m["after"]["id"] for m in messages if m["type"] == "end"}


def _restart_ends(messages: list[dict]) -> set[str]:
    return {m["after"]["id"] for m in messages
            if m["type"] == "end" and m["after"].get("end_reason") == "restart"}


def _check_footage_index(workdir: Path, before: set[str]) -> None:
    """Nothing indexed before the kill is lost; the old run's files are all indexed."""
    after = {row[0] for row in _db(workdir, "SELECT path FROM segments")}
    assert before <= after
    old_run = {Path(p).name.split("-")[0] for p in before}
    on_disk = {str(p) for p in (workdir / "rec" / "cam").glob("*.mp4")
               if p.name.split("-")[0] in old_run}
    assert on_disk <= after and all(Path(p).is_file() for p in after)


def _check_a_clip(http: int, workdir: Path, skip: set[str]) -> None:
    """An event ended after the restart, with footage all around it: its clip is valid."""
    def covered() -> list:
        segs = api_json(http, "/api/recordings")["segments"]
        return [e for e in api_json(http, "/api/events?limit=500")["events"]
                if e["end_time"] and e["id"] not in skip
                and _footage(segs, wall_time(e["start_time"]) - 2,
                             wall_time(e["end_time"]) + 2) >= 0.99]
    events = wait_until(covered, 180, 1.0)
    assert events
    status, _, body = api(http, f"/api/events/{events[0]['id']}/clip.mp4")
    assert status == 200
    (workdir / "clip.mp4").write_bytes(body)
    duration, frames = probe_video(workdir / "clip.mp4")
    expected = wall_time(events[0]["end_time"]) - wall_time(events[0]["start_time"]) + 4
    # a clip starts at the keyframe at or before its window (record.encode.gop_s = 1 s early at
    # most) and its ends fall on frames (10 fps): one GOP plus a frame each side of the window
    frame, gop = 0.1, 1.0
    assert expected - 1.0 <= duration <= expected + gop + 2 * frame and frames > 10


def test_kill_9_then_restart(tmp_path, demo_model, demo_video, mosquitto) -> None:  # noqa: ANN001
    folder = _frames_folder(demo_video(100, seed=4)[0], tmp_path / "frames")
    host, port = mosquitto
    config = recording_config(demo_model, {"name": "cam", "source": {
        "type": "folder", "path": str(folder), "fps": 10, "loop": True}}, tmp_path)
    config["outputs"]["mqtt"] = {"enabled": True, "port": port, "topic_prefix": "rec9",
                                 "client_id": "d2s-rec9"}
    http = config["outputs"]["http"]["port"]
    path = write_yaml(tmp_path / "config.yaml", config)
    subscriber = Subscriber(host, port, "rec9")
    daemon = DaemonProcess(path, tmp_path)
    try:
        assert wait_until(lambda: _recording_with_an_open_event(http), 240, 0.5), \
            daemon.stderr()
        assert "cannot be remuxed" not in daemon.stderr()
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(30)
        open_ids = _open_in_journal(tmp_path)
        before = {row[0] for row in _db(tmp_path, "SELECT path FROM segments")}
        assert open_ids and before
        daemon = DaemonProcess(path, tmp_path)
        logged = lambda: _restart_ends(read_jsonl(tmp_path / "events.jsonl"))  # noqa: E731
        assert wait_until(lambda: open_ids <= logged(), 240, 0.5), daemon.stderr()
        published = lambda: _restart_ends(  # noqa: E731
            [json.loads(p) for p in subscriber.on("rec9/cam/events")])
        assert wait_until(lambda: open_ids <= published(), 60, 0.5)
        assert logged() == open_ids  # only the events left open
        reasons = dict(_db(tmp_path, "SELECT id, end_reason FROM events"))
        assert {reasons[i] for i in open_ids} == {"restart"}
        _check_footage_index(tmp_path, before)
        _check_a_clip(http, tmp_path, open_ids)
    finally:
        daemon.terminate()
        subscriber.close()
