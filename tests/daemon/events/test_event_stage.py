"""The event stage of a camera as the pipeline drives it, and what it exports as metrics."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from daemon.config import ConfigError, parse_config
from daemon.demo.synthetic import Shape, ShapeScene
from daemon.events.stage import EventStage, event_clock
from daemon.inference.predictor import CompactPrediction
from daemon.sinks import prometheus
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics

NAMES = ["square", "circle", "triangle"]
CONFIG = """
model: {path: m.onnx}
cameras:
  - name: cam
    source: {type: opencv, url: clip.mp4}
    zones:
      left: {coordinates: [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]}
detect: {fps: 5, motion_timeout_s: 2}
events: {labels: [triangle], end_after_s: 1}
"""


def stage_for(text: str = CONFIG, metrics: Metrics | None = None) -> EventStage:
    config = parse_config(text, base_dir=Path("/nonexistent"), env={}, check_files=False)
    return EventStage(config, NAMES, "demo", metrics)


def frames(count: int, present: range) -> list[Frame]:
    """A 10 fps scene (media clock) with a triangle at x = 60..  in the frames of ``present``;
    the display image is twice the model image."""
    scene = ShapeScene(160, 120, n_shapes=0, seed=2)
    out = []
    for seq in range(count):
        scene.shapes = [Shape(2, 30 + seq, 60, 30, 0, (40, 40, 200), 0, 0, 0)] \
            if seq in present else []
        image = scene.render()[0]
        display = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)
        out.append(Frame("cam", seq, 1000 + seq, 1_767_225_600 + seq / 10, image, display,
                         t_media=seq / 10))
    return out


def triangle_at(frame: Frame) -> CompactPrediction:
    """What a model would find: the triangle of :func:`frames`, in model-image pixels."""
    x = 30 + frame.seq
    return CompactPrediction(image_size=(120, 160), boxes=np.array([[x - 15, 45, x + 15, 75.0]]),
                             scores=np.array([0.95], np.float32), classes=np.array([2]))


def test_the_pipeline_loop_gates_tracks_and_ends() -> None:
    metrics = Metrics()
    metrics.add_camera("cam")
    stage = stage_for(metrics=metrics)
    camera = stage["cam"]
    messages, inferred = [], []
    for frame in frames(40, present=range(5, 20)):
        if camera.should_infer(frame):
            inferred.append(frame.seq)
            prediction = triangle_at(frame) if 5 <= frame.seq < 20 else \
                triangle_at(frame).select(np.zeros(1, bool))
            batch = camera.inferred(frame, prediction)
        else:
            metrics.frame_skipped("cam")
            batch = camera.skipped(frame)
        messages += [(frame.seq, m.type, m.after) for m in batch.events]
    # first frame; motion and then tracking at 5 fps; none once the scene is still again
    assert inferred[0] == 0 and all(b - a >= 2 for a, b in zip(inferred, inferred[1:],
                                                               strict=False))
    assert not [s for s in inferred if s > 32]  # no motion, nothing tracked, timeout 2 s away
    assert [(t, a["track_id"]) for _, t, a in messages] == [("start", 1), ("end", 1)]
    start, end = messages[0][2], messages[1][2]
    assert start["box"][0] == pytest.approx(2 * (30 + messages[0][0] - 15))  # display pixels
    assert start["frame_size"] == [320, 240] and start["current_zones"] == ["left"]
    last_seen = max(seq for seq in inferred if seq < 20)
    assert last_seen >= 18 and end["frame"] == last_seen
    assert end["end_time"] == f"2026-01-01T00:00:0{last_seen // 10}.{last_seen % 10}00Z"
    assert messages[1][0] == last_seen + 10  # gone for end_after_s = 1 s: ended on that frame
    snap = metrics.snapshot()["cameras"]["cam"]
    assert snap["events"] == 2 and snap["objects"] == {"triangle": 0}
    assert snap["motion_frames"] > 0 and snap["skipped"] == 40 - len(inferred)
    text = prometheus.render(metrics.snapshot())
    samples = dict(re.findall(r"^(d2stream_\S+) (\S+)$", text, re.MULTILINE))
    assert samples['d2stream_objects{camera="cam",label="triangle"}'] == "0"
    assert samples['d2stream_inferences_skipped_total{camera="cam"}'] == str(snap["skipped"])
    assert int(samples['d2stream_motion_frames_total{camera="cam"}']) > 0
    assert 'd2stream_motion_score{camera="cam"}' in samples


def test_skipped_frames_show_the_last_detections_while_objects_are_tracked() -> None:
    camera = stage_for()["cam"]
    video = frames(8, present=range(8))
    for frame in video[:3]:
        camera.inferred(frame, triangle_at(frame))
    shown = camera.display_prediction(video[3])
    assert len(shown) == 1 and shown.boxes[0][0] == 30 + 2 - 15
    _, batch = camera.close()
    assert [m.type for m in batch.events] == ["end"]
    assert len(camera.display_prediction(video[4])) == 0  # nothing tracked any more


def test_event_clock_prefers_the_media_position() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    assert event_clock(Frame("c", 0, 50.0, 1e9, image)) == 50.0
    assert event_clock(Frame("c", 0, 50.0, 1e9, image, t_media=3.5)) == 3.5


def test_unknown_labels_stop_the_start() -> None:
    with pytest.raises(ConfigError, match=r"^events.labels: 'dog' is not a class"):
        stage_for(CONFIG.replace("labels: [triangle]", "labels: [dog]"))


def test_live_frames_get_one_predicted_box_per_track() -> None:
    """The triangle moves 1 px a frame (10 px/s on the model image, 20 on the display);
    inferred on frames 0-5 and reported three times (two more labels) on each: the live view
    of frame 9 gets one box, moved on by the velocity, in display pixels."""
    camera = stage_for(CONFIG.replace("labels: [triangle]", "labels: []"))["cam"]
    video = frames(12, present=range(12))
    for frame in video[:6]:
        one = triangle_at(frame)
        camera.inferred(frame, CompactPrediction(
            image_size=(120, 160), boxes=np.repeat(one.boxes, 3, axis=0) + [[0, 0, 0, 0],
                                                                          [2, 0, 2, 0],
                                                                          [0, 3, 0, 3]],
            scores=np.array([0.95, 0.9, 0.85], np.float32), classes=np.array([2, 0, 1])))
    (box,) = camera.tracked_boxes(video[9])
    assert box.class_id == 2 and box.track_id == 1
    centre = (box.box[0] + box.box[2]) / 2  # display pixels: 2 * (30 + seq)
    assert abs(centre - 2 * (30 + 9)) < 3, centre
    assert abs(centre - 2 * (30 + 5)) > 5  # not the box of the last inference
