"""Prometheus text, health, and annotation of frames (events: tests/daemon/events)."""

from __future__ import annotations

import json
import re
import time

import numpy as np

from daemon.config.schema import DrawSection
from daemon.inference.predictor import CompactPrediction
from daemon.sinks import prometheus
from daemon.sinks.annotate import annotate
from daemon.structures.frame import Frame
from daemon.structures.messages import iso_time
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult, ModelInfo
from daemon.visualization.draw import color_for

NAMES = ["square", "circle", "triangle"]


def prediction(image_hw: tuple[int, int] = (100, 200)) -> CompactPrediction:
    probs = np.zeros((3, 28, 28), np.float32)
    probs[:, 4:24, 4:24] = 1.0
    return CompactPrediction(
        image_size=image_hw,
        boxes=np.array([[10, 20, 50, 60], [100, 10, 150, 90], [0, 0, 5, 5]], np.float32),
        scores=np.array([0.95, 0.7, 0.55], np.float32),
        classes=np.array([2, 0, 1], np.int64),
        mask_probs=probs)


def frame(display: bool = False) -> Frame:
    image = np.full((100, 200, 3), 200, np.uint8)
    big = np.full((300, 600, 3), 200, np.uint8) if display else None
    return Frame("front", 42, 1000.0, 1_700_000_000.25, image, big)


def test_iso_time_is_utc_with_milliseconds() -> None:
    assert iso_time(0.001) == "1970-01-01T00:00:00.001Z"


def test_prometheus_text_and_health() -> None:
    metrics = Metrics(lambda: {"front": (1, 4)})
    metrics.add_camera("front")
    snap = metrics.snapshot()
    assert prometheus.health(snap) == "starting"
    metrics.worker_started(1234, restarted=False)
    metrics.worker_started(1235, restarted=True)
    metrics.set_connected("front", True)
    now = time.monotonic()
    metrics.frame_captured("front", now)
    metrics.frame_processed("front", 0.25, 0.2, now + 0.3)
    metrics.set_ready()
    text = prometheus.render(metrics.snapshot())
    samples = dict(re.findall(r"^(d2stream_\S+) (\S+)$", text, re.MULTILINE))
    assert samples['d2stream_frames_processed_total{camera="front"}'] == "1"
    assert samples['d2stream_frames_dropped_total{camera="front"}'] == "4"
    assert samples['d2stream_queue_depth{camera="front"}'] == "1"
    assert samples["d2stream_worker_restarts_total"] == "1"
    assert samples['d2stream_latency_seconds{camera="front",quantile="0.5"}'] == "0.25"
    for name in ("d2stream_fps", "d2stream_frames_lost_total", "d2stream_inference_seconds"):
        assert f"# TYPE {name} " in text
    assert prometheus.health(metrics.snapshot()) == "ok"
    metrics.set_connected("front", False)
    assert prometheus.health(metrics.snapshot()) == "degraded"


def test_annotation_draws_boxes_masks_and_status() -> None:
    model = ModelInfo("demo", NAMES, [], [], 256, 400)
    result = FrameResult(frame(display=True), prediction(), model, 0.1, 1000.2, fps=4.5)
    out = annotate(result, DrawSection(min_score=0.9, fps=True))
    assert out.shape == (300, 600, 3)
    box_color = np.array(color_for(2))
    assert (np.abs(out[100:200, 31].astype(int) - box_color).sum(axis=1) < 30).any()
    inside = out[130:170, 80:100].reshape(-1, 3).mean(0)  # blended mask, not the background
    assert np.abs(inside - 200).max() > 20
    assert (out[0:3, 0:40] < 50).all()  # the dark status bar above its text
    untouched = out[250:300, 400:600]
    assert (untouched == 200).all()  # the 0.7 and 0.55 detections are below draw.min_score
    nothing = annotate(result, DrawSection(min_score=0.99, fps=False))
    assert (nothing == 200).all()
    no_masks = annotate(result, DrawSection(min_score=0.9, masks=False, fps=False))
    assert (no_masks[130:170, 80:100] == 200).all()


def test_snapshot_before_any_frame_is_strict_json() -> None:
    metrics = Metrics()
    metrics.add_camera("front")
    text = json.dumps(metrics.snapshot(), allow_nan=False)  # browsers reject NaN
    assert json.loads(text)["cameras"]["front"]["latency_p50_s"] is None
    assert 'd2stream_latency_seconds{camera="front",quantile="0.5"} NaN' in \
        prometheus.render(metrics.snapshot())
