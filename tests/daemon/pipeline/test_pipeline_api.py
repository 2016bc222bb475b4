"""The daemon from Python: ``Pipeline`` with a sink of one's own receiving every result."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from daemon.config import parse_config
from daemon.inference.instances import Instances
from daemon.pipeline.runner import Pipeline
from daemon.sinks import Sink
from daemon.structures.results import FrameResult
from tests.daemon.daemon_helpers import daemon_config, read_jsonl


class Collect(Sink):
    name = "collect"

    def __init__(self) -> None:
        super().__init__(queue_size=1000)
        self.results: list[FrameResult] = []
        self.closed = False

    def handle(self, result: FrameResult) -> None:
        self.results.append(result)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("depth", [1, 2])
def test_pipeline_hands_every_result_to_a_custom_sink(demo_model: Path, demo_video,  # noqa: ANN001
                                                      tmp_path: Path, depth: int) -> None:
    """Every frame in capture order per camera, at ``worker.pipeline_depth`` 1 and 2 (2: the
    worker gets a camera's next frame before the previous result went through the events)."""
    import yaml

    video, truth = demo_video(6, seed=7)
    folder = tmp_path / "stills"
    folder.mkdir()
    cap = cv2.VideoCapture(str(demo_video(12, seed=8)[0]))
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:02d}.png"), cap.read()[1])
    cap.release()
    cameras = [{"name": "cam", "source": {"type": "opencv", "url": str(video), "realtime": False}},
               {"name": "stills", "source": {"type": "folder", "path": str(folder)}}]
    config_dict = daemon_config(demo_model, video, cameras=cameras)
    config_dict["worker"] = {**config_dict.get("worker", {}), "pipeline_depth": depth}
    text = yaml.safe_dump(config_dict)
    config = parse_config(text, base_dir=tmp_path, env={})
    sink = Collect()
    pipeline = Pipeline(config, stop=threading.Event(), extra_sinks=[sink])
    assert pipeline.run() == 0  # the file ends, the run ends
    assert sink.closed and sink.metrics is pipeline.metrics
    by_camera = {name: [r.frame.seq for r in sink.results
                        if r.camera == name and not r.closing]  # closing: events end at stop
                 for name in ("cam", "stills")}
    assert by_camera == {"cam": list(range(len(truth))), "stills": [0, 1, 2]}
    # the cameras take turns at the model: the stills are not left to the end (the video's
    # frames that detect.fps keeps from the model are delivered as they are taken)
    inferred = [r.camera for r in sink.results if r.inferred]
    # (with depth 2 a camera may have two frames in flight before the other one has any queued)
    assert inferred.count("stills") == 3
    assert "stills" in inferred[:depth + 1] and "cam" in inferred[:depth + 1]
    first = next(r for r in sink.results if r.camera == "cam" and r.inferred)
    assert first.model.class_names == ["square", "circle", "triangle"]
    assert first.latency_s > first.inference_s > 0
    light = first.instances  # masks as 28x28 probabilities, cheap
    assert isinstance(light, Instances) and light.pred_masks is None
    full = first.to_instances(paste_masks=True)  # detectron2's class when it is installed
    assert full.pred_masks.shape == (len(light), 240, 320) and full.pred_masks.any()
    assert full.pred_masks.dtype == np.bool_
    events = read_jsonl(tmp_path / "events.jsonl")
    assert len(events) == sum(len(r.events) for r in sink.results) > 0
    logged = [(e["after"]["camera"], e["after"]["id"], e["type"]) for e in events]
    assert logged == [(r.camera, e.event_id, e.type) for r in sink.results for e in r.events]
    assert pipeline.peak_rss_kb["daemon"] > 0 and pipeline.peak_rss_kb["worker"] > 0


def test_next_frame_is_inferring_while_the_events_are_worked_out(
        demo_model: Path, demo_video, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """At ``pipeline_depth`` 1 a result hands the camera's next frame to the worker before it
    goes through the event stage, so the worker never waits for the events."""
    import yaml

    from daemon.events.stage import CameraEvents

    video, truth = demo_video(12, seed=3)
    cameras = [{"name": "cam", "source": {"type": "opencv", "url": str(video), "realtime": False}}]
    config_dict = daemon_config(demo_model, video, cameras=cameras)
    config_dict["detect"] = {"fps": 0}  # every frame to the model
    config = parse_config(yaml.safe_dump(config_dict), base_dir=tmp_path, env={})
    pipeline = Pipeline(config, stop=threading.Event())
    busy_during_events: list[bool] = []
    original = CameraEvents.inferred

    def inferred(self: CameraEvents, frame, prediction):  # noqa: ANN001, ANN202
        assert pipeline.supervisor is not None
        busy_during_events.append(not pipeline.supervisor.idle())
        return original(self, frame, prediction)

    monkeypatch.setattr(CameraEvents, "inferred", inferred)
    assert pipeline.run() == 0
    assert len(busy_during_events) == len(truth)
    # every result but the last has its successor in flight (the reader is a frame ahead)
    assert sum(busy_during_events[:-1]) >= len(truth) - 3, busy_during_events
