"""The state of one tracked object and its event, as published in messages.

A :class:`TrackedObject` follows one tracker track: its recent scores (for the start rule), its
best frame (for the snapshot), its zones, and what was last published about it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from daemon.structures.frame import Frame
from daemon.structures.messages import event_id, iso_time
from daemon.structures.snapshot import BestShot


def rounded_box(box: np.ndarray | list[float]) -> list[float]:
    return [round(float(v), 1) for v in box]


@dataclass(frozen=True)
class EventContext:
    """What every state of a camera's events shares."""

    camera: str
    model: str
    frame_size: tuple[int, int]
    snapshot_dir: Path | None


@dataclass
class TrackedObject:
    """One track and its event (``event_id`` is set once the event has started)."""

    track_id: int
    label: str
    first_wall: float
    window: int
    last_wall: float = 0.0
    last_t: float = 0.0
    box: list[float] = field(default_factory=list)
    frame_seq: int = 0
    scores: deque[float] = field(default_factory=deque)
    top_score: float = 0.0
    best: BestShot | None = None
    current_zones: list[str] = field(default_factory=list)
    entered_zones: list[str] = field(default_factory=list)
    event_id: str | None = None
    published: dict[str, Any] | None = None
    published_t: float = 0.0

    def __post_init__(self) -> None:
        self.scores = deque(maxlen=self.window)

    @property
    def started(self) -> bool:
        return self.event_id is not None

    def observe(self, frame: Frame, t: float, box: np.ndarray, score: float,
                zones: list[str]) -> None:
        """Record a detection of the object on ``frame`` (event clock ``t``)."""
        self.box = rounded_box(box)
        self.frame_seq = frame.seq
        self.last_wall, self.last_t = frame.t_wall, t
        self.scores.append(float(score))
        if self.best is None or score > self.best.score:
            self.best = BestShot(frame, list(self.box), float(score))
        self.top_score = max(self.top_score, float(score))
        self.current_zones = zones
        for zone in zones:
            if zone not in self.entered_zones:
                self.entered_zones.append(zone)

    def median_score(self) -> float:
        """Median of the last ``window`` scores, missing ones counted as 0: an object needs
        more than half a window of detections before its score can reach a threshold."""
        padded = list(self.scores) + [0.0] * (self.window - len(self.scores))
        return float(np.median(padded))

    def start(self, camera: str) -> None:
        self.event_id = event_id(camera, self.first_wall, self.track_id)

    def snapshot_path(self, ctx: EventContext) -> Path | None:
        if ctx.snapshot_dir is None or self.event_id is None:
            return None
        return ctx.snapshot_dir / ctx.camera / f"{self.event_id}.jpg"

    def state(self, ctx: EventContext, ended: bool = False) -> dict[str, Any]:
        """The event as published (``after`` of a message)."""
        best = self.best
        snapshot = self.snapshot_path(ctx)
        return {
            "id": self.event_id, "camera": ctx.camera, "label": self.label,
            "track_id": self.track_id,
            "start_time": iso_time(self.first_wall), "last_time": iso_time(self.last_wall),
            "end_time": iso_time(self.last_wall) if ended else None,
            "score": round(self.median_score(), 4), "top_score": round(self.top_score, 4),
            "box": list(self.box), "frame": self.frame_seq,
            "best": None if best is None else {
                "time": iso_time(best.frame.t_wall), "frame": best.frame.seq,
                "score": round(best.score, 4), "box": list(best.box)},
            "current_zones": [] if ended else list(self.current_zones),
            "entered_zones": list(self.entered_zones),
            "snapshot": None if snapshot is None else str(snapshot),
            "frame_size": list(ctx.frame_size), "model": ctx.model,
        }
