"""What the live view draws: one box per tracked object (``overlay: tracked``) or the model's
raw detections (``overlay: detections``)."""

from __future__ import annotations

import numpy as np

from daemon.config.schema import DrawSection
from daemon.inference.predictor import CompactPrediction
from daemon.sinks.annotate import annotate, display_instances, tracked_instances
from daemon.structures.frame import Frame
from daemon.structures.results import FrameResult, ModelInfo, TrackedBox
from daemon.visualization.draw import color_for

MODEL = ModelInfo("demo", ["square", "circle", "triangle"], [], [], 256, 400)
DRAW = DrawSection(fps=False)


def result(objects: list[TrackedBox] | None) -> FrameResult:
    """One object reported three times (three labels) by the last inference."""
    frame = Frame("cam", 7, 1.0, 1e9, np.full((120, 160, 3), 128, np.uint8))
    boxes = np.array([[20, 20, 60, 60], [22, 20, 62, 60], [20, 23, 60, 63]], np.float64)
    prediction = CompactPrediction(image_size=(120, 160), boxes=boxes,
                                   scores=np.array([0.9, 0.8, 0.7], np.float32),
                                   classes=np.array([2, 0, 1]))
    return FrameResult(frame, prediction, MODEL, 0.0, 1.0, live=True, objects=objects)


def test_tracked_overlay_draws_one_box_per_track_where_the_track_is() -> None:
    tracked = result([TrackedBox(1, 2, 0.9, (90.0, 30.0, 130.0, 70.0))])  # predicted: moved on
    assert len(tracked_instances(tracked)) == 1
    image = annotate(tracked, DRAW)
    colour = np.array(color_for(2))
    assert (np.abs(image[50, 88:93].astype(int) - colour).sum(axis=1) < 60).any()  # its edge
    assert (image[50, 18:23] == 128).all()  # nothing where the raw detections were


def test_detections_overlay_draws_the_raw_detections() -> None:
    raw = result(None)
    assert len(display_instances(raw, DRAW)) == 3
    image = annotate(raw, DRAW)
    assert not (image[50, 18:23] == 128).all()
