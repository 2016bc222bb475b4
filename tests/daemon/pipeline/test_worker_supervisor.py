"""The model worker process: shared-memory frames, compact results, restart after death/hang."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from d2common.errors import ModelError
from daemon.config.schema import WorkerSection
from daemon.demo.synthetic import ShapeScene
from daemon.inference.predictor import Predictor
from daemon.pipeline.supervisor import WorkerResult, WorkerSupervisor
from daemon.pipeline.worker import WorkerSpec, pack_prediction, unpack_prediction
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics
from tests.daemon.daemon_helpers import wait_until


def scene_frames(count: int, size: tuple[int, int] = (320, 240), seed: int = 5) -> list[Frame]:
    scene = ShapeScene(*size, seed=seed)
    frames = []
    for seq in range(count):
        image, _ = scene.render()
        frames.append(Frame.now("cam", seq, image))
        for _ in range(4):
            scene.step()
    return frames


class Collector:
    def __init__(self) -> None:
        self.results: list[WorkerResult] = []
        self.cond = threading.Condition()

    def __call__(self, result: WorkerResult) -> None:
        with self.cond:
            self.results.append(result)
            self.cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.results) >= count, timeout)


def start(model: Path, collector: Collector, metrics: Metrics,
          **worker: float) -> WorkerSupervisor:
    spec = WorkerSpec(str(model), num_threads=1, min_score=0.3)
    config = WorkerSection(**{"restart_delay_s": 0.1, **worker})
    supervisor = WorkerSupervisor(spec, config, metrics, collector)
    supervisor.start()
    return supervisor


def feed(supervisor: WorkerSupervisor, frames: list[Frame]) -> None:
    stop = threading.Event()
    for frame in frames:
        assert supervisor.wait_slot(stop, timeout=60)
        assert supervisor.submit(frame)


def test_results_match_the_model_run_directly(demo_model: Path) -> None:
    metrics = Metrics()
    metrics.add_camera("cam")
    collector = Collector()
    supervisor = start(demo_model, collector, metrics)
    assert supervisor.metadata["class_names"] == ["square", "circle", "triangle"]
    frames = scene_frames(3) + scene_frames(2, size=(480, 360), seed=6)  # the slot grows
    feed(supervisor, frames)
    assert collector.wait_for(len(frames), 120)
    supervisor.stop(drain_timeout=10)
    predictor = Predictor(demo_model, num_threads=1)
    for result, frame in zip(collector.results, frames, strict=True):
        assert result.frame is frame and result.inference_s > 0
        direct = predictor.predict_compact(frame.image)
        keep = direct.scores >= 0.3
        got = result.prediction
        assert got.image_size == frame.image.shape[:2]
        np.testing.assert_allclose(got.scores, direct.scores[keep], atol=1e-5)
        np.testing.assert_allclose(got.boxes, direct.boxes[keep], atol=1e-3)
        np.testing.assert_array_equal(got.classes, direct.classes[keep])
        assert got.mask_probs.shape == (int(keep.sum()), 28, 28)
        assert got.to_instances().pred_masks.shape == (int(keep.sum()), *frame.image.shape[:2])
    assert metrics.snapshot()["worker"]["restarts"] == 0


def test_killed_worker_is_restarted_and_the_pipeline_goes_on(demo_model: Path) -> None:
    metrics = Metrics()
    metrics.add_camera("cam")
    collector = Collector()
    supervisor = start(demo_model, collector, metrics)
    try:
        first_pid = metrics.worker_pid
        feed(supervisor, scene_frames(1))
        assert collector.wait_for(1, 60)
        feed(supervisor, scene_frames(1))  # in flight when the worker dies
        os.kill(first_pid, signal.SIGKILL)
        assert wait_until(lambda: metrics.worker_restarts == 1 and metrics.worker_alive, 120)
        assert metrics.worker_pid != first_pid
        feed(supervisor, scene_frames(2))
        assert collector.wait_for(2, 120) and len(collector.results) in (2, 3)
        assert metrics.frames_lost == 3 - len(collector.results)
    finally:
        supervisor.stop(drain_timeout=10)


def test_hung_inference_is_killed_after_the_timeout(demo_model: Path) -> None:
    metrics = Metrics()
    metrics.add_camera("cam")
    collector = Collector()
    supervisor = start(demo_model, collector, metrics, inference_timeout_s=1.0)
    try:
        pid = metrics.worker_pid
        os.kill(pid, signal.SIGSTOP)  # a worker that never answers
        feed(supervisor, scene_frames(1))
        assert wait_until(lambda: metrics.worker_restarts == 1 and metrics.worker_alive, 120)
        assert metrics.frames_lost == 1
        feed(supervisor, scene_frames(1))
        assert collector.wait_for(1, 60)
    finally:
        supervisor.stop(drain_timeout=10)


def test_unloadable_model_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not an onnx file")
    supervisor = WorkerSupervisor(WorkerSpec(str(bad), 1, 0.5), WorkerSection(), Metrics(),
                                  lambda r: None)
    with pytest.raises(ModelError, match="bad.onnx"):
        supervisor.start()
    supervisor.stop(drain_timeout=1)


def test_pack_keeps_only_confident_detections(demo_model: Path) -> None:
    frame = scene_frames(1)[0]
    prediction = Predictor(demo_model, num_threads=1).predict_compact(frame.image)
    packed = pack_prediction(prediction, 0.6)
    keep = prediction.scores >= 0.6
    assert 0 < keep.sum() < len(prediction)
    rebuilt = unpack_prediction(packed)
    assert len(rebuilt) == keep.sum() and rebuilt.image_size == prediction.image_size
    np.testing.assert_array_equal(rebuilt.mask_probs, prediction.mask_probs[keep])
