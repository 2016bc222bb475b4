"""Snapshots the event stage asks the snapshot sink to write: an event's best frame and box."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daemon.structures.frame import Frame


@dataclass
class BestShot:
    """The frame where the object scored highest, with its box on that frame."""

    frame: Frame
    box: list[float]
    score: float


@dataclass
class SnapshotJob:
    """Write ``best``'s frame (with its box drawn) to ``path``."""

    path: Path
    best: BestShot
    label: str
    event_id: str
