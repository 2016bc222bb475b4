"""Detection events: one JSON object per detection that passes ``events:`` filters.

This module is the single place where detections become events, so that a later tracker (event
start/update/end) can replace it without touching the sinks. An event's JSON text is made once
and the same bytes go to the event log, MQTT and anything else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from daemon.config.errors import ConfigError
from daemon.config.schema import EventsSection
from daemon.sources.base import Frame


def new_run_id() -> str:
    """A short id of this daemon run: milliseconds since the epoch, in hex (never repeats)."""
    return format(time.time_ns() // 1_000_000, "x")


def iso_time(t_wall: float) -> str:
    """``2026-01-02T03:04:05.678Z`` (UTC, milliseconds)."""
    stamp = datetime.fromtimestamp(t_wall, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Event:
    """One detection in one frame.

    ``box`` is ``[x0, y0, x1, y1]`` in pixels of the frame as displayed and snapshotted
    (``frame_size`` ``[w, h]``); ``frame`` is the camera's frame sequence number.
    """

    event_id: str
    time: str
    camera: str
    frame: int
    label: str
    class_id: int
    score: float
    box: list[float]
    frame_size: list[int]
    model: str
    latency_ms: float
    json: str = field(default="", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id, "time": self.time, "camera": self.camera,
            "frame": self.frame, "label": self.label, "class_id": self.class_id,
            "score": self.score, "box": self.box, "frame_size": self.frame_size,
            "model": self.model, "latency_ms": self.latency_ms,
        }


class EventEmitter:
    """Turns a frame's predictions into :class:`Event` objects.

    ``run_id`` (when given) goes into every ``event_id`` (``<camera>-<run>-<frame>-<n>``):
    frame numbers start again at 0 after a restart, run ids do not repeat, so event ids stay
    unique across restarts (the MQTT outbox deduplicates by them).

    Raises:
        ConfigError: when ``events.labels`` names a class the model does not have.
    """

    def __init__(self, config: EventsSection, class_names: Sequence[str], model_name: str,
                 run_id: str = "") -> None:
        self.config = config
        self._id_prefix = f"{run_id}-" if run_id else ""
        self.class_names = list(class_names)
        self.model_name = model_name
        unknown = [label for label in config.labels if label not in self.class_names]
        if unknown:
            raise ConfigError(
                f"{unknown[0]!r} is not a class of model {model_name!r} "
                f"(classes: {', '.join(self.class_names)})", key="events.labels")
        self._wanted = {self.class_names.index(label) for label in config.labels}

    def label(self, class_id: int) -> str:
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) \
            else f"class_{class_id}"

    def events_for(self, frame: Frame, prediction: Any, done_mono: float) -> list[Event]:
        """Events for the detections of ``prediction`` (a ``CompactPrediction`` of ``frame``)."""
        scores = np.asarray(prediction.scores)
        classes = np.asarray(prediction.classes)
        keep = np.flatnonzero(scores >= self.config.min_score)
        if self._wanted:
            keep = keep[np.isin(classes[keep], list(self._wanted))]
        if keep.size == 0:
            return []
        shown = frame.display_image
        sy = shown.shape[0] / frame.image.shape[0]
        sx = shown.shape[1] / frame.image.shape[1]
        boxes = np.asarray(prediction.boxes, np.float64)[keep] * [sx, sy, sx, sy]
        latency_ms = round((done_mono - frame.t_mono) * 1000.0, 1)
        time_text, size = iso_time(frame.t_wall), [int(shown.shape[1]), int(shown.shape[0])]
        events = []
        for n, (i, box) in enumerate(zip(keep, boxes, strict=True)):
            cls = int(classes[i])
            values = {"event_id": f"{frame.camera}-{self._id_prefix}{frame.seq}-{n}",
                      "time": time_text,
                      "camera": frame.camera, "frame": frame.seq, "label": self.label(cls),
                      "class_id": cls, "score": round(float(scores[i]), 4),
                      "box": [round(float(v), 1) for v in box], "frame_size": size,
                      "model": self.model_name, "latency_ms": latency_ms}
            events.append(Event(**values, json=json.dumps(values, separators=(",", ":"))))
        return events
