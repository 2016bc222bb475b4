"""End to end: a video written by the test runs through ``d2stream run`` with the demo model.

One run (module fixture) with the event log, MQTT (a real mosquitto) and snapshots enabled; the
video is read losslessly, the shapes move all the time and ``detect.fps`` is 0, so every frame
is inferred and the run ends at the end of the file. (The scripted event sequence, zones and
motion gating: test_scripted_events.py.)
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from daemon.demo.synthetic import GroundTruth
from daemon.inference.predictor import Predictor
from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    read_jsonl,
    wait_until,
    write_yaml,
)
from tests.daemon.mqtt_subscriber import Subscriber

FRAMES = 12
# the run is the first test's setup: minutes under aarch64 emulation (make test-aarch64)
pytestmark = pytest.mark.timeout(1200)
SEED = 3
MIN_SCORE = 0.5


@dataclass
class FinishedRun:
    workdir: Path
    video: Path
    truth: list[list[GroundTruth]]
    returncode: int
    stderr: str
    events: list[dict[str, Any]]
    event_lines: list[bytes]
    mqtt_events: list[bytes]
    availability: list[bytes]
    stats: dict[str, Any]
    counts: dict[str, list[bytes]]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, demo_model, demo_video, mosquitto) -> FinishedRun:  # noqa: ANN001
    workdir = tmp_path_factory.mktemp("run")
    video, truth = demo_video(FRAMES, seed=SEED)
    prefix = f"d2s-{uuid.uuid4().hex[:8]}"
    host, port = mosquitto
    config = daemon_config(
        demo_model, video, detect={"fps": 0},
        events={"min_score": MIN_SCORE, "threshold": 0.7, "score_window": 3},
        outputs={"mqtt": {"enabled": True, "host": host, "port": port, "topic_prefix": prefix,
                          "client_id": f"d2stream-{prefix}"},
                 "snapshots": {"enabled": True, "dir": "snapshots"}})
    subscriber = Subscriber(host, port, prefix)
    try:
        daemon = DaemonProcess(write_yaml(workdir / "config.yaml", config), workdir)
        returncode = daemon.wait(timeout=900)  # 12 frames: minutes under aarch64 emulation
        log_path = workdir / "events.jsonl"
        lines = log_path.read_bytes().splitlines() if log_path.exists() else []
        topic = f"{prefix}/cam/events"
        wait_until(lambda: len(subscriber.on(topic)) >= len(lines)
                   and b"offline" in subscriber.on(f"{prefix}/availability"), 15)
        time.sleep(0.3)  # anything extra (duplicates) would arrive now
        return FinishedRun(workdir, video, truth, returncode, daemon.stderr(),
                           read_jsonl(log_path) if lines else [], lines,
                           subscriber.on(topic), subscriber.on(f"{prefix}/availability"),
                           daemon.stats(), {t: subscriber.on(t) for t in subscriber.topics()
                                            if "/objects" in t})
    finally:
        subscriber.close()


def test_run_ends_cleanly_at_the_end_of_the_video(finished_run: FinishedRun) -> None:
    assert finished_run.returncode == 0, finished_run.stderr
    assert "Traceback" not in finished_run.stderr
    cam = finished_run.stats["cameras"]["cam"]
    assert cam["captured"] == cam["processed"] == FRAMES and cam["skipped"] == 0
    assert cam["dropped"] == 0 and finished_run.stats["worker"]["frames_lost"] == 0
    assert cam["events"] == len(finished_run.events) > 0
    assert cam["objects"] and not any(cam["objects"].values())  # every event ended


AFTER_KEYS = {"id", "camera", "label", "track_id", "start_time", "last_time", "end_time",
              "score", "top_score", "box", "frame", "best", "current_zones", "entered_zones",
              "snapshot", "frame_size", "model"}


def test_event_log_holds_start_update_end_messages(finished_run: FinishedRun) -> None:
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in finished_run.events:
        assert set(message) == {"v", "type", "before", "after"} and message["v"] == 1
        after = message["after"]
        assert set(after) == AFTER_KEYS
        assert after["camera"] == "cam" and after["model"] == "mask_rcnn_R_50_FPN_demo"
        assert after["label"] in ("square", "circle", "triangle")
        assert after["top_score"] >= after["score"] and 0 <= after["frame"] < FRAMES
        assert message["type"] != "start" or after["score"] >= 0.7  # the start rule
        x0, y0, x1, y1 = after["box"]
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240 and after["frame_size"] == [320, 240]
        assert after["id"] == f"cam-{after['start_time'].replace('-', '').replace(':', '')}-" \
                              f"{after['track_id']}"
        by_id[after["id"]].append(message)
    for messages in by_id.values():  # start, updates, end; each "before" is the last "after"
        types = [m["type"] for m in messages]
        assert types[0] == "start" and types[-1] == "end" and set(types[1:-1]) <= {"update"}
        assert messages[0]["before"] is None
        for previous, message in zip(messages, messages[1:], strict=False):
            assert message["before"] == previous["after"]
        assert messages[-1]["after"]["end_time"] == messages[-1]["after"]["last_time"]


def test_best_frames_are_the_models_detections(finished_run: FinishedRun,
                                               demo_model: Path) -> None:
    """Each ended event's best detection is what the model finds in that very frame (read back
    from the video): right frame numbers, right coordinates, right score."""
    predictor = Predictor(demo_model, num_threads=2)
    cap = cv2.VideoCapture(str(finished_run.video))
    frames = []
    for _ in range(FRAMES):
        ok, image = cap.read()
        assert ok
        frames.append(image)
    cap.release()
    ends = [m["after"] for m in finished_run.events if m["type"] == "end"]
    assert ends
    for after in ends:
        best = after["best"]
        direct = predictor.predict_compact(frames[best["frame"]])
        match = [(s, b) for b, s, c in zip(direct.boxes, direct.scores, direct.classes,
                                           strict=True)
                 if predictor.metadata.class_names[c] == after["label"]
                 and np.allclose(b, best["box"], atol=0.2)]
        assert len(match) == 1 and abs(match[0][0] - best["score"]) < 2e-3, (after, direct)
        assert best["score"] == after["top_score"]


def iou(a: tuple[float, ...], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def test_events_are_the_moving_shapes(finished_run: FinishedRun) -> None:
    """Against the scene's ground truth: each event's best box is on a shape (the demo model
    sometimes names a circle a triangle or a square: labels are the model's business)."""
    ends = [m["after"] for m in finished_run.events if m["type"] == "end"]
    for after in ends:
        truth = finished_run.truth[after["best"]["frame"]]
        assert any(iou(t.box, after["best"]["box"]) >= 0.5 for t in truth), after
    assert any(t.label == a["label"] and iou(t.box, a["best"]["box"]) >= 0.5
               for a in ends for t in finished_run.truth[a["best"]["frame"]])


def test_mqtt_broker_received_the_same_messages(finished_run: FinishedRun) -> None:
    assert finished_run.mqtt_events == finished_run.event_lines  # same bytes, same order
    assert finished_run.availability[0] == b"online"
    assert finished_run.availability[-1] == b"offline"
    counts = finished_run.counts
    prefix = next(iter(counts)).split("/")[0]
    all_labels = [json.loads(p) for p in counts[f"{prefix}/cam/objects"]]
    assert all_labels[0] == {"square": 0, "circle": 0, "triangle": 0}
    assert all_labels[-1] == all_labels[0] and max(sum(c.values()) for c in all_labels) >= 2
    for label in ("square", "circle", "triangle"):
        assert [int(p) for p in counts[f"{prefix}/cam/objects/{label}"]] == \
            [c[label] for c in all_labels]


def test_snapshots_of_the_ended_events(finished_run: FinishedRun) -> None:
    folder = finished_run.workdir / "snapshots" / "cam"
    ends = [m["after"] for m in finished_run.events if m["type"] == "end"]
    assert sorted(folder.glob("*.jpg")) == sorted(Path(a["snapshot"]) for a in ends)
    assert all(Path(a["snapshot"]).name == f"{a['id']}.jpg" for a in ends)
    image = cv2.imread(ends[0]["snapshot"])
    assert image is not None and image.shape == (240, 320, 3)
    assert not list(folder.glob("*.tmp"))


def test_events_carry_their_json_unchanged(finished_run: FinishedRun) -> None:
    for line, event in zip(finished_run.event_lines, finished_run.events, strict=True):
        assert json.loads(line) == event
