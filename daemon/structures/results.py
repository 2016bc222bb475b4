"""What the pipeline hands to every sink: a frame, its predictions and its events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from daemon.inference.instances import Instances, to_detectron2
from daemon.structures.frame import Frame
from daemon.structures.messages import EventMessage
from daemon.structures.snapshot import SnapshotJob


@dataclass
class ModelInfo:
    """The parts of the model's metadata the parent process uses."""

    name: str
    class_names: list[str]
    keypoint_names: list[str]
    keypoint_connections: list[list[str]]
    min_size_test: int
    max_size_test: int

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> ModelInfo:
        return cls(name=str(meta.get("model_name", "model")),
                   class_names=list(meta.get("class_names", [])),
                   keypoint_names=list(meta.get("keypoint_names", [])),
                   keypoint_connections=[list(p) for p in meta.get("keypoint_connections", [])],
                   min_size_test=int(meta.get("min_size_test", 800)),
                   max_size_test=int(meta.get("max_size_test", 1333)))


@dataclass(frozen=True)
class TrackedBox:
    """One tracked object as the live view draws it: ``box`` in display-image pixels."""

    track_id: int
    class_id: int
    score: float
    box: tuple[float, float, float, float]


@dataclass
class FrameResult:
    """One inferred frame.

    Attributes:
        frame: the captured frame.
        prediction: a ``CompactPrediction`` at ``frame.image`` resolution (detections above
            ``model.min_score``; masks as ``M x M`` probabilities, not pasted).
        model: the model's names.
        inference_s: time the worker spent on the frame.
        done_mono: ``time.monotonic()`` when the result reached the parent.
        fps: the camera's processed frames per second at that moment.
        events: the event messages (start/update/end) this frame produced.
        inferred: ``False`` for a frame the model did not see (motion gating, ``detect.fps``):
            ``prediction`` is then the camera's last one while objects are tracked, else empty.
        counts: objects with an open event per label, when they changed on this frame.
        snapshots: best frames of ended events to write.
        closing: the result made at shutdown to end every open event (``frame`` is the
            camera's last frame, already delivered once).
        live: a captured frame for the live view, sent at the camera's rate whether the
            model saw it or not (its events, if any, come in the pipeline's own result).
        objects: for a live frame, the tracked objects at the frame's time (their boxes
            predicted between inferences), one per track.
    """

    frame: Frame
    prediction: Any
    model: ModelInfo
    inference_s: float
    done_mono: float
    fps: float = 0.0
    events: list[EventMessage] = field(default_factory=list)
    inferred: bool = True
    counts: dict[str, int] | None = None
    snapshots: list[SnapshotJob] = field(default_factory=list)
    closing: bool = False
    live: bool = False
    objects: list[TrackedBox] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _annotated: dict[Any, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def camera(self) -> str:
        return self.frame.camera

    @property
    def latency_s(self) -> float:
        """Capture to result, seconds."""
        return self.done_mono - self.frame.t_mono

    @property
    def instances(self) -> Instances:
        """d2stream's ``Instances`` (masks kept as probabilities, not pasted)."""
        return self.prediction.to_instances(paste=False)

    def to_instances(self, paste_masks: bool = True, prefer_detectron2: bool = True) -> Any:
        """Instances at ``frame.image`` resolution: detectron2's class when it is importable and
        ``prefer_detectron2``, d2stream's otherwise."""
        ours = self.prediction.to_instances(paste=paste_masks)
        if prefer_detectron2:
            try:
                return to_detectron2(ours)
            except ImportError:
                pass
        return ours

    def annotated(self, key: Any, draw: Callable[[FrameResult], np.ndarray]) -> np.ndarray:
        """``draw(self)``, computed once per ``key`` even when several sinks ask at once."""
        with self._lock:
            if key not in self._annotated:
                self._annotated[key] = draw(self)
            return self._annotated[key]
