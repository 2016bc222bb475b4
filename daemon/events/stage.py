"""The pipeline's event stage: per camera, motion gating, tracking and the event life cycle.

For every frame taken from a camera's queue the pipeline asks :meth:`EventStage.should_infer`
(motion detector + :class:`InferenceGate`); an inferred frame comes back with its prediction
through :meth:`EventStage.inferred`, a skipped one goes through :meth:`EventStage.skipped` (it
can still end events). The pipeline delivers a camera's frames one at a time, in capture order,
so each camera's state sees its frames in sequence.

Times: the *event clock* of a frame is ``frame.t_media`` (position in a video file read as fast
as the model goes) when set, else ``frame.t_mono``; ``detect.fps``, ``motion_timeout_s``,
``end_after_s`` and ``update_interval_s`` are measured on it, so a file gives the same events
however fast it is processed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from daemon.config.events_checks import check_labels
from daemon.config.schema import CameraSection, DaemonConfig
from daemon.events.gate import InferenceGate
from daemon.events.lifecycle import EventBatch, EventTracker
from daemon.motion.detector import MotionDetector
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics
from daemon.structures.results import TrackedBox

log = logging.getLogger(__name__)


def event_clock(frame: Frame) -> float:
    """Seconds on the camera's event clock (see the module docstring)."""
    t_media = getattr(frame, "t_media", None)
    return frame.t_mono if t_media is None else float(t_media)


def display_boxes(frame: Frame, boxes: np.ndarray) -> np.ndarray:
    """Boxes predicted on ``frame.image`` scaled to ``frame.display_image`` pixels."""
    shown, image = frame.display_image.shape, frame.image.shape
    sx, sy = shown[1] / image[1], shown[0] / image[0]
    return np.asarray(boxes, np.float64).reshape(-1, 4) * [sx, sy, sx, sy]


class CameraEvents:
    """Gate, motion detector and event tracker of one camera (thread-safe)."""

    def __init__(self, config: DaemonConfig, camera: CameraSection, class_names: Sequence[str],
                 model_name: str, metrics: Metrics | None = None) -> None:
        settings = config.camera_settings(camera)
        self.name = camera.name
        self.metrics = metrics
        self.gate = InferenceGate(settings.detect, motion_gating=settings.motion.enabled)
        self.motion = MotionDetector(settings.motion) if settings.motion.enabled else None
        snapshots = config.outputs.snapshots
        snapshot_dir: Path | None = snapshots.dir if snapshots.enabled else None
        self.tracker = EventTracker(camera.name, settings, config.tracking, class_names,
                                    model_name, snapshot_dir)
        self._lock = threading.Lock()
        self.last_frame: Frame | None = None
        self.last_prediction: Any = None

    def should_infer(self, frame: Frame) -> bool:
        """Run the motion detector on ``frame`` and decide whether the model sees it."""
        with self._lock:
            moved = False
            if self.motion is not None:
                result = self.motion.detect(frame.image)
                moved = result.motion
                if self.metrics is not None:
                    self.metrics.motion_observed(self.name, result.score, moved)
            decision = self.gate.decide(event_clock(frame), moved, self.tracker.active)
            return decision.infer

    def inferred(self, frame: Frame, prediction: Any) -> EventBatch:
        """Events of an inferred frame (``prediction``: a ``CompactPrediction`` of
        ``frame.image``)."""
        with self._lock:
            boxes = display_boxes(frame, prediction.boxes)
            batch = self.tracker.observe(frame, event_clock(frame), boxes,
                                         np.asarray(prediction.scores),
                                         np.asarray(prediction.classes))
            self.last_frame, self.last_prediction = frame, prediction
            return self._counted(batch)

    def skipped(self, frame: Frame) -> EventBatch:
        """Events of a frame the model did not see (objects gone long enough end)."""
        with self._lock:
            batch = self.tracker.tick(frame, event_clock(frame))
            self.last_frame = frame
            return self._counted(batch)

    def display_prediction(self, frame: Frame) -> Any:
        """What to draw on a skipped frame: the last prediction while objects are tracked,
        nothing otherwise."""
        with self._lock:
            last = self.last_prediction
            same_size = last is not None and tuple(last.image_size) == frame.image.shape[:2]
            if same_size and self.tracker.active:
                return last
            if same_size:
                return last.select(np.zeros(len(last), bool))
        from daemon.inference.predictor import CompactPrediction  # noqa: PLC0415

        return CompactPrediction(image_size=frame.image.shape[:2], boxes=np.zeros((0, 4)),
                                 scores=np.zeros(0, np.float32), classes=np.zeros(0, np.int64))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return self.tracker.counts()

    def tracked_boxes(self, frame: Frame) -> list[TrackedBox]:
        """The objects matched at the camera's latest inference, their boxes predicted (Kalman)
        for ``frame``'s time and scaled to its display image: one per track."""
        with self._lock:
            return self.tracker.tracked_boxes(frame, event_clock(frame))

    def close(self) -> tuple[Frame | None, EventBatch]:
        """End every event; returns the camera's last frame with the batch."""
        with self._lock:
            return self.last_frame, self._counted(self.tracker.close())

    def _counted(self, batch: EventBatch) -> EventBatch:
        if self.metrics is not None:
            if batch.events:
                self.metrics.events_emitted(self.name, len(batch.events))
            if batch.counts is not None:
                self.metrics.object_counts(self.name, batch.counts)
        return batch


class EventStage:
    """The :class:`CameraEvents` of every enabled camera.

    Raises:
        ConfigError: a label in ``events`` or a zone is not a class of the model.
    """

    def __init__(self, config: DaemonConfig, class_names: Sequence[str], model_name: str,
                 metrics: Metrics | None = None) -> None:
        check_labels(config, class_names, model_name)
        self.cameras = {camera.name: CameraEvents(config, camera, class_names, model_name,
                                                  metrics)
                        for camera in config.enabled_cameras()}

    def __getitem__(self, camera: str) -> CameraEvents:
        return self.cameras[camera]

    def counts(self) -> dict[str, dict[str, int]]:
        """Objects with an open event per camera and tracked label (every label listed)."""
        return {name: camera.counts() for name, camera in self.cameras.items()}

    def close(self) -> list[tuple[Frame, EventBatch]]:
        """End every camera's events (shutdown); cameras that never had a frame are left out."""
        out = []
        for camera in self.cameras.values():
            frame, batch = camera.close()
            if frame is not None:
                out.append((frame, batch))
        return out
