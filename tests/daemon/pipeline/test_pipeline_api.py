"""The daemon from Python: ``Pipeline`` with a sink of one's own receiving every result."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from daemon.config import parse_config
from daemon.inference.instances import Instances
from daemon.pipeline.results import FrameResult
from daemon.pipeline.runner import Pipeline
from daemon.sinks import Sink
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


def test_pipeline_hands_every_result_to_a_custom_sink(demo_model: Path, demo_video,  # noqa: ANN001
                                                      tmp_path: Path) -> None:
    import yaml

    video, truth = demo_video(6, seed=7)
    text = yaml.safe_dump(daemon_config(demo_model, video))
    config = parse_config(text, base_dir=tmp_path, env={})
    sink = Collect()
    pipeline = Pipeline(config, stop=threading.Event(), extra_sinks=[sink])
    assert pipeline.run() == 0  # the file ends, the run ends
    assert sink.closed and sink.metrics is pipeline.metrics
    assert [r.frame.seq for r in sink.results] == list(range(len(truth)))
    first = sink.results[0]
    assert first.camera == "cam" and first.model.class_names == ["square", "circle", "triangle"]
    assert first.latency_s > first.inference_s > 0
    light = first.instances  # masks as 28x28 probabilities, cheap
    assert isinstance(light, Instances) and light.pred_masks is None
    full = first.to_instances(paste_masks=True)  # detectron2's class when it is installed
    assert full.pred_masks.shape == (len(light), 240, 320) and full.pred_masks.any()
    assert full.pred_masks.dtype == np.bool_
    events = read_jsonl(tmp_path / "events.jsonl")
    assert len(events) == sum(len(r.events) for r in sink.results) > 0
    assert events[0] == sink.results[events[0]["frame"]].events[0].to_dict()
    assert pipeline.peak_rss_kb["daemon"] > 0 and pipeline.peak_rss_kb["worker"] > 0
