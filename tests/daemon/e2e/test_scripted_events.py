"""End to end: a scripted scene gives exactly the expected events, in the log and on MQTT.

The script (10 fps, 12.5 s): triangle A enters from the left, crosses zone ``zone_a``, stops
in ``stop_area`` for 3 s and leaves to the right; later triangle B enters and stops (outside
the zones) until the video ends. The video is read as fast as the model goes, so every time
rule runs on the video's own clock; ``d2stream run`` uses the demo model, motion gating,
``detect.fps: 5``, a real mosquitto. A second run on a still scene checks that the model then
runs once per ``detect.motion_timeout_s`` only.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    read_jsonl,
    wait_until,
    write_yaml,
)
from tests.daemon.events.script import Actor, write_script
from tests.daemon.mqtt_subscriber import Subscriber

FPS = 10.0
FRAMES = 125
A = Actor(2, 60, (40, 40, 200), ((5, -35, 110), (32, 235, 110), (62, 235, 110), (75, 365, 110)))
B = Actor(2, 56, (200, 60, 30), ((95, -35, 130), (108, 100, 130), (125, 100, 130)))
ZONES = {"zone_a": (0.4, 0.6), "stop_area": (0.7, 0.9)}  # x ranges (fractions), full height
END_AFTER_S = 2.0

# (actor, type, current_zones, entered_zones), in the order of the event log
EXPECTED = [
    ("A", "start", [], []),
    ("A", "update", ["zone_a"], ["zone_a"]),
    ("A", "update", [], ["zone_a"]),
    ("A", "update", ["stop_area"], ["zone_a", "stop_area"]),
    ("A", "update", [], ["zone_a", "stop_area"]),
    ("A", "end", [], ["zone_a", "stop_area"]),
    ("B", "start", [], []),
    ("B", "end", [], []),  # at the end of the video (the daemon stops)
]


@dataclass
class Run:
    workdir: Path
    returncode: int
    stderr: str
    messages: list[dict[str, Any]]
    lines: list[bytes]
    mqtt_events: list[bytes]
    mqtt_counts: dict[str, list[bytes]]
    stats: dict[str, Any]


def zone_config() -> dict[str, Any]:
    return {name: {"coordinates": [[x0, 0], [x1, 0], [x1, 1], [x0, 1]]}
            for name, (x0, x1) in ZONES.items()}


def run_daemon(workdir: Path, model: Path, video: Path, mosquitto: tuple[str, int] | None,
               **sections: Any) -> Run:
    prefix = f"d2s-{uuid.uuid4().hex[:8]}"
    outputs: dict[str, Any] = {"snapshots": {"enabled": True, "dir": "snapshots"}}
    if mosquitto is not None:
        outputs["mqtt"] = {"enabled": True, "host": mosquitto[0], "port": mosquitto[1],
                           "topic_prefix": prefix, "client_id": f"d2stream-{prefix}"}
    config = daemon_config(model, video, outputs=outputs, **sections)
    subscriber = Subscriber(*mosquitto, prefix) if mosquitto is not None else None
    try:
        daemon = DaemonProcess(write_yaml(workdir / "config.yaml", config), workdir)
        returncode = daemon.wait(timeout=300)
        log_path = workdir / "events.jsonl"
        lines = log_path.read_bytes().splitlines() if log_path.exists() else []
        events: list[bytes] = []
        counts: dict[str, list[bytes]] = {}
        if subscriber is not None:
            topic = f"{prefix}/cam/events"
            wait_until(lambda: len(subscriber.on(topic)) >= len(lines)
                       and b"offline" in subscriber.on(f"{prefix}/availability"), 15)
            time.sleep(0.3)  # duplicates would arrive now
            events = subscriber.on(topic)
            counts = {t.removeprefix(f"{prefix}/cam/"): subscriber.on(t)
                      for t in subscriber.topics() if t.startswith(f"{prefix}/cam/objects")}
        return Run(workdir, returncode, daemon.stderr(), read_jsonl(log_path) if lines else [],
                   lines, events, counts, daemon.stats())
    finally:
        if subscriber is not None:
            subscriber.close()


@pytest.fixture(scope="module")
def scripted(tmp_path_factory, demo_model, mosquitto) -> tuple[Run, list]:  # noqa: ANN001
    workdir = tmp_path_factory.mktemp("scripted")
    video = workdir / "script.avi"
    truth = write_script(video, [A, B], FRAMES, fps=FPS, seed=0)
    camera = {"name": "cam", "zones": zone_config(),
              "source": {"type": "opencv", "url": str(video), "realtime": False}}
    run = run_daemon(workdir, demo_model, video, mosquitto, cameras=[camera],
                     detect={"fps": 5, "motion_timeout_s": 10},
                     events={"labels": ["triangle"], "min_score": 0.5, "threshold": 0.7,
                             "end_after_s": END_AFTER_S, "update_interval_s": 60})
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    return run, truth


def actor_of(message: dict[str, Any]) -> str:
    return {1: "A", 2: "B"}[message["after"]["track_id"]]


def test_exactly_the_scripted_event_sequence(scripted: tuple[Run, list]) -> None:
    run, _ = scripted
    got = [(actor_of(m), m["type"], m["after"]["current_zones"], m["after"]["entered_zones"])
           for m in run.messages]
    assert got == EXPECTED
    ids = {actor: {m["after"]["id"] for m in run.messages if actor_of(m) == actor}
           for actor in "AB"}
    assert all(len(v) == 1 for v in ids.values()) and ids["A"] != ids["B"]
    for m in run.messages:
        after = m["after"]
        assert after["id"] == "cam-{}-{}".format(
            after["start_time"].replace("-", "").replace(":", ""), after["track_id"])
        assert after["label"] == "triangle" and after["camera"] == "cam"
    for previous, message in zip(run.messages, run.messages[1:], strict=False):
        if message["type"] != "start":
            assert message["before"] == previous["after"]  # one object at a time here
    assert run.messages[0]["before"] is None and run.messages[6]["before"] is None


def bottom_centre_x(truth: list, frame: int) -> float:
    (shape,) = truth[frame]
    return (shape.box[0] + shape.box[2]) / 2 / 320


def test_each_change_happens_where_the_script_puts_it(scripted: tuple[Run, list]) -> None:
    run, truth = scripted
    for message in run.messages:
        after = message["after"]
        x = bottom_centre_x(truth, after["frame"])
        for name, (x0, x1) in ZONES.items():
            if message["type"] == "end" or min(abs(x - x0), abs(x - x1)) < 0.01:
                continue  # no current zones once gone; boxes are not exact at a border
            assert (name in after["current_zones"]) == (x0 < x < x1), (message, x)
    start_a, start_b = (m["after"] for m in run.messages if m["type"] == "start")
    assert start_a["frame"] < 22  # confirmed before reaching zone_a (its bottom centre at 128 px)
    assert 95 < start_b["frame"] < 110
    end_a = run.messages[5]["after"]
    assert 62 <= end_a["frame"] <= 72  # last seen while leaving
    assert end_a["end_time"] == end_a["last_time"]


def test_best_frames_and_their_snapshots(scripted: tuple[Run, list]) -> None:
    run, truth = scripted
    for end in (m["after"] for m in run.messages if m["type"] == "end"):
        best = end["best"]
        (shape,) = truth[best["frame"]]
        box = np.array(best["box"])
        assert np.abs(box - np.array(shape.box)).max() < 8, (best, shape)
        assert best["score"] == end["top_score"] >= 0.9
        path = Path(end["snapshot"])
        assert path == run.workdir / "snapshots" / "cam" / f"{end['id']}.jpg"
        image = cv2.imread(str(path))
        assert image is not None and image.shape == (240, 320, 3)
    assert len(list((run.workdir / "snapshots" / "cam").iterdir())) == 2


def test_mqtt_carries_the_same_messages_and_the_counts(scripted: tuple[Run, list]) -> None:
    run, _ = scripted
    assert run.mqtt_events == run.lines
    assert [int(p) for p in run.mqtt_counts["objects/triangle"]] == [0, 1, 0, 1, 0]
    assert [json.loads(p) for p in run.mqtt_counts["objects"]] == \
        [{"triangle": n} for n in (0, 1, 0, 1, 0)]


def test_motion_gating_and_fps_cap_saved_inferences(scripted: tuple[Run, list]) -> None:
    run, _ = scripted
    cam = run.stats["cameras"]["cam"]
    assert cam["captured"] == FRAMES and cam["dropped"] == 0
    assert cam["processed"] + cam["skipped"] == FRAMES
    # at most 5 inferences per second of video, and none in the still stretches
    assert cam["processed"] <= FRAMES / FPS * 5 + 1
    assert 0 < cam["motion_frames"] < FRAMES
    assert cam["events"] == len(run.messages) and cam["objects"] == {"triangle": 0}


STILL_FRAMES = 100
MOTION_TIMEOUT_S = 3.0


def test_still_scene_runs_the_model_once_per_motion_timeout(tmp_path: Path,
                                                            demo_model: Path) -> None:
    video = tmp_path / "still.avi"
    write_script(video, [], STILL_FRAMES, fps=FPS, seed=4)
    camera = {"name": "cam", "source": {"type": "opencv", "url": str(video), "realtime": False}}
    run = run_daemon(tmp_path, demo_model, video, None, cameras=[camera],
                     detect={"fps": 5, "motion_timeout_s": MOTION_TIMEOUT_S})
    assert run.returncode == 0, run.stderr
    cam = run.stats["cameras"]["cam"]
    duration = STILL_FRAMES / FPS
    assert cam["captured"] == STILL_FRAMES and cam["motion_frames"] == 0
    # the first frame, then once per motion_timeout_s of video: 0, 3, 6, 9 s
    assert cam["processed"] <= 1 + int(duration // MOTION_TIMEOUT_S)
    assert cam["processed"] == 4 and cam["skipped"] == STILL_FRAMES - 4
    assert run.messages == []
