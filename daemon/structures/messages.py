"""Event messages: the versioned JSON envelope sent to the event log and MQTT.

One message per change of a tracked object's event::

    {"v": 1, "type": "start" | "update" | "end", "before": {...} | null, "after": {...}}

``before`` is the state last published for the event (``null`` for ``start``), ``after`` the
state now. The JSON text is made once; the same bytes go to every sink.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

SCHEMA_VERSION = 1
EventType = Literal["start", "update", "end"]


def iso_time(t_wall: float) -> str:
    """``2026-01-02T03:04:05.678Z`` (UTC, milliseconds)."""
    stamp = datetime.fromtimestamp(t_wall, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def compact_time(t_wall: float) -> str:
    """``20260102T030405.678Z``: :func:`iso_time` without separators (for ids and names)."""
    return iso_time(t_wall).replace("-", "").replace(":", "")


def event_id(camera: str, t_wall: float, track_id: int) -> str:
    """``<camera>-<compact start time>-<track id>``: unique per camera and start time, the same
    in every message of the event."""
    return f"{camera}-{compact_time(t_wall)}-{track_id}"


@dataclass(frozen=True)
class EventMessage:
    """One message of an event's life; ``json`` is its serialised envelope."""

    type: EventType
    before: dict[str, Any] | None
    after: dict[str, Any]
    json: str = field(default="", compare=False, repr=False)

    @classmethod
    def make(cls, type_: EventType, before: dict[str, Any] | None,
             after: dict[str, Any]) -> EventMessage:
        envelope = {"v": SCHEMA_VERSION, "type": type_, "before": before, "after": after}
        return cls(type_, before, after, json.dumps(envelope, separators=(",", ":")))

    @property
    def event_id(self) -> str:
        return str(self.after["id"])

    @property
    def camera(self) -> str:
        return str(self.after["camera"])

    def to_dict(self) -> dict[str, Any]:
        return {"v": SCHEMA_VERSION, "type": self.type, "before": self.before,
                "after": self.after}
