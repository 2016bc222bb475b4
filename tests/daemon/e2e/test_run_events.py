"""End to end: a video written by the test runs through ``d2stream run`` with the demo model.

One run (module fixture) with the event log, MQTT (a real mosquitto) and snapshots enabled; the
video is read losslessly so every frame is inferred and the run ends at the end of the file.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from daemon.inference.predictor import Predictor
from daemon.sources.synthetic import GroundTruth
from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    read_jsonl,
    wait_until,
    write_yaml,
)

FRAMES = 12
SEED = 3
MIN_SCORE = 0.5


class Subscriber:
    """A paho client collecting every message under ``prefix/#``."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"test-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, *a: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, 30)
        self.client.loop_start()
        assert self.subscribed.wait(15), "could not subscribe to the test broker"

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, demo_model, demo_video, mosquitto) -> FinishedRun:  # noqa: ANN001
    workdir = tmp_path_factory.mktemp("run")
    video, truth = demo_video(FRAMES, seed=SEED)
    prefix = f"d2s-{uuid.uuid4().hex[:8]}"
    host, port = mosquitto
    config = daemon_config(demo_model, video, events={"min_score": MIN_SCORE}, outputs={
        "mqtt": {"enabled": True, "host": host, "port": port, "topic_prefix": prefix,
                 "client_id": f"d2stream-{prefix}"},
        "snapshots": {"enabled": True, "dir": "snapshots", "min_interval_s": 0},
    })
    subscriber = Subscriber(host, port, prefix)
    try:
        daemon = DaemonProcess(write_yaml(workdir / "config.yaml", config), workdir)
        returncode = daemon.wait(timeout=240)
        log_path = workdir / "events.jsonl"
        lines = log_path.read_bytes().splitlines() if log_path.exists() else []
        topic = f"{prefix}/cam/events"
        wait_until(lambda: len(subscriber.on(topic)) >= len(lines)
                   and b"offline" in subscriber.on(f"{prefix}/availability"), 15)
        time.sleep(0.3)  # anything extra (duplicates) would arrive now
        return FinishedRun(workdir, video, truth, returncode, daemon.stderr(),
                           read_jsonl(log_path) if lines else [], lines,
                           subscriber.on(topic), subscriber.on(f"{prefix}/availability"),
                           daemon.stats())
    finally:
        subscriber.close()


def test_run_ends_cleanly_at_the_end_of_the_video(finished_run: FinishedRun) -> None:
    assert finished_run.returncode == 0, finished_run.stderr
    assert "Traceback" not in finished_run.stderr
    cam = finished_run.stats["cameras"]["cam"]
    assert cam["captured"] == cam["processed"] == FRAMES
    assert cam["dropped"] == 0 and finished_run.stats["worker"]["frames_lost"] == 0
    assert cam["events"] == len(finished_run.events) > 0


def test_event_log_holds_one_object_per_detection(finished_run: FinishedRun) -> None:
    for event in finished_run.events:
        assert set(event) == {"event_id", "time", "camera", "frame", "label", "class_id",
                              "score", "box", "frame_size", "model", "latency_ms"}
        assert event["camera"] == "cam" and event["model"] == "mask_rcnn_R_50_FPN_demo"
        assert event["label"] in ("square", "circle", "triangle")
        assert event["score"] >= MIN_SCORE and 0 <= event["frame"] < FRAMES
        x0, y0, x1, y1 = event["box"]
        assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
        assert event["frame_size"] == [320, 240]
        assert event["time"].endswith("Z") and event["latency_ms"] > 0
    assert len({e["event_id"] for e in finished_run.events}) == len(finished_run.events)


def test_events_are_the_models_detections_on_each_frame(finished_run: FinishedRun,
                                                        demo_model: Path) -> None:
    """Every frame's events equal what the model finds in that very frame (read back from the
    video): right frame numbers, right coordinates, nothing lost or duplicated."""
    predictor = Predictor(demo_model, num_threads=2)
    by_frame: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in finished_run.events:
        by_frame[event["frame"]].append(event)
    cap = cv2.VideoCapture(str(finished_run.video))
    for seq in range(FRAMES):
        ok, image = cap.read()
        assert ok
        direct = predictor.predict_compact(image)
        expected = [(predictor.metadata.class_names[c], float(s), b)
                    for b, s, c in zip(direct.boxes, direct.scores, direct.classes, strict=True)
                    if s >= MIN_SCORE]
        got = by_frame.get(seq, [])
        borderline = [e for e in expected if abs(e[1] - MIN_SCORE) < 1e-3]
        assert abs(len(got) - len(expected)) <= len(borderline), (seq, got, expected)
        for label, score, box in expected:
            if abs(score - MIN_SCORE) < 1e-3:
                continue
            match = [e for e in got if e["label"] == label and abs(e["score"] - score) < 2e-3
                     and np.allclose(e["box"], box, atol=0.2)]
            assert len(match) == 1, (seq, label, score, box, got)
    cap.release()


def iou(a: tuple[float, ...], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def test_events_find_the_moving_shapes(finished_run: FinishedRun) -> None:
    """Against the scene's ground truth: the shapes are found where they are."""
    by_frame: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for event in finished_run.events:
        by_frame[event["frame"]].append(event)
    located = same_label = total = 0
    for seq, truth in enumerate(finished_run.truth):
        for shape in truth:
            total += 1
            hits = [e for e in by_frame[seq] if iou(shape.box, e["box"]) >= 0.5]
            located += bool(hits)
            same_label += any(e["label"] == shape.label for e in hits)
    assert located >= 0.9 * total, (located, total)
    assert same_label >= 0.75 * total, (same_label, total)


def test_mqtt_broker_received_the_same_events(finished_run: FinishedRun) -> None:
    assert finished_run.mqtt_events == finished_run.event_lines  # same bytes, same order
    assert finished_run.availability[0] == b"online"
    assert finished_run.availability[-1] == b"offline"


def test_snapshots_of_the_event_frames(finished_run: FinishedRun) -> None:
    folder = finished_run.workdir / "snapshots" / "cam"
    files = sorted(folder.glob("*.jpg"))
    event_frames = sorted({e["frame"] for e in finished_run.events})
    assert [int(f.stem.rsplit("-", 1)[1]) for f in files] == event_frames
    image = cv2.imread(str(files[0]))
    assert image is not None and image.shape == (240, 320, 3)
    assert not list(folder.glob("*.tmp"))


def test_events_carry_their_json_unchanged(finished_run: FinishedRun) -> None:
    for line, event in zip(finished_run.event_lines, finished_run.events, strict=True):
        assert json.loads(line) == event
