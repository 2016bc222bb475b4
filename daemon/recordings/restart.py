"""Events left open by a crash or power cut: ended at the next start with
``end_reason: "restart"``, so that no consumer waits forever for their ``end``."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from daemon.recordings.db import EventDB
from daemon.structures.frame import Frame
from daemon.structures.messages import EventMessage
from daemon.structures.results import FrameResult, ModelInfo

log = logging.getLogger(__name__)


def restart_end(state: dict[str, Any]) -> EventMessage:
    """The ``end`` message of an event whose last published state is ``state``: it ended when
    it was last seen."""
    after = {**state, "end_time": state.get("last_time") or state["start_time"],
             "current_zones": [], "end_reason": "restart"}
    return EventMessage.make("end", state, after)


def restart_ends(db: EventDB) -> list[EventMessage]:
    """End messages for every event the database knows as open."""
    messages = [restart_end(state) for state in db.open_events()]
    if messages:
        log.warning("%d event(s) left open by the previous run end now (end_reason restart)",
                    len(messages))
    return messages


def left_open_results(db_path: Path, model: ModelInfo | None) -> list[FrameResult]:
    """One frameless :class:`FrameResult` per camera carrying the restart ends of its events."""
    db = EventDB(db_path)
    try:
        messages = restart_ends(db)
    finally:
        db.close()
    by_camera: dict[str, list[EventMessage]] = {}
    for message in messages:
        by_camera.setdefault(message.camera, []).append(message)
    placeholder = np.zeros((1, 1, 3), np.uint8)
    info = model or ModelInfo("model", [], [], [], 800, 1333)
    results = []
    for camera, events in by_camera.items():
        frame = Frame(camera, -1, time.monotonic(), time.time(), placeholder)
        result = FrameResult(frame, None, info, 0.0, time.monotonic(), inferred=False,
                             frameless=True)
        result.events = events
        results.append(result)
    return results
