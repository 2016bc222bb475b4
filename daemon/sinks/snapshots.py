"""Snapshot sink: the best frame of each event (where its object scored highest), written once
when the event ends, with retention by count, age and disk use.

Files are ``<dir>/<camera>/<event id>.jpg`` (the path every message of the event carries in
``snapshot``); with ``annotate`` the object's box and ``label score`` are drawn on it. A snapshot
that cannot be written (disk full, read-only folder) is skipped and ``/healthz`` reports the
failure until a write works again; a partial file is never left behind (``.tmp``, renamed).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np

from daemon.config.errors import ConfigError
from daemon.config.schema import DrawSection, SnapshotOutput
from daemon.sinks.annotate import encode_jpeg
from daemon.sinks.base import Sink
from daemon.sinks.event_journal import Entry, Journal, register_consumer
from daemon.sinks.retention import Retention, prune
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult
from daemon.structures.snapshot import SnapshotJob

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 60.0
#: how long an event's end waits for its frame to come through the queue
FRAME_WAIT_S = 5.0
MAX_HELD_JOBS = 256
BOX_COLOR = (0, 200, 255)  # BGR
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_event(image: np.ndarray, box: list[float], text: str) -> np.ndarray:
    """A copy of ``image`` with ``box`` ``[x0, y0, x1, y1]`` and a ``text`` tag drawn."""
    out = image.copy()
    thickness = max(1, round(min(out.shape[:2]) / 320))
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOR, thickness, cv2.LINE_AA)
    scale = max(0.35, min(out.shape[:2]) / 700)
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    x = min(max(x0, 0), max(0, out.shape[1] - w - 2))
    y = y0 - h - base - 2 if y0 - h - base - 2 >= 0 else min(y1 + 1, out.shape[0] - h - base - 2)
    cv2.rectangle(out, (x, y), (x + w + 2, y + h + base + 2), BOX_COLOR, -1)
    cv2.putText(out, text, (x + 1, y + h + 1), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return out


class SnapshotSink(Sink):
    """Writes the best frame of every ended event under ``outputs.snapshots.dir``."""

    name = "snapshots"

    def __init__(self, config: SnapshotOutput, draw: DrawSection, queue_size: int,
                 metrics: Metrics) -> None:
        super().__init__(queue_size, metrics)
        self.config = config
        self.draw = draw
        self.retention = Retention(max_files=config.max_files,
                                   max_age_s=config.max_age_days * 86400.0,
                                   max_bytes=config.max_bytes)
        self.written = 0
        self._next_prune = 0.0

    def wants(self, result: FrameResult) -> bool:
        return bool(result.snapshots)

    def open(self) -> None:
        try:
            self.config.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {self.config.dir}: {exc.strerror or exc}",
                              key="outputs.snapshots.dir") from None
        self._prune()

    def handle(self, result: FrameResult) -> None:
        for job in result.snapshots:
            self.write(job)
        self._prune()

    def write(self, job: SnapshotJob) -> None:
        """Encode and write one snapshot atomically (temporary file, then rename)."""
        image = job.best.frame.display_image
        if self.config.annotate:
            image = draw_event(image, job.best.box, f"{job.label} {job.best.score:.0%}")
        data = encode_jpeg(image, self.config.jpeg_quality)
        tmp = job.path.with_name(job.path.name + ".tmp")
        try:
            job.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, job.path)
        except OSError as exc:  # disk full, read-only, folder removed: skip this snapshot
            _remove_quietly(tmp)
            self.metrics.faults.sink_add(self.name, "write_errors")
            log.warning("snapshot of event %s not written: %s", job.event_id,
                        exc.strerror or exc)
            self.report_failure(f"cannot write {job.path.parent}: {exc.strerror or exc}")
            return
        self.report_working()
        self.written += 1

    def idle(self) -> None:
        if time.monotonic() >= self._next_prune:
            self._prune()

    def _prune(self) -> None:
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        removed = prune(self.config.dir, self.retention)
        if removed:
            log.debug("snapshots: removed %d old file(s)", len(removed))


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("snapshots: cannot remove %s: %s", path, exc.strerror or exc)


@register_consumer("snapshots")
class JournalSnapshotSink(SnapshotSink):
    """Snapshots as a journal consumer. The journal holds no images, so the best frames still
    come through the queue (a read-ahead, by event id); what is due, and when it is done, comes
    from the ``snapshots`` cursor: each end message naming a snapshot. A snapshot written but
    not acknowledged before a crash is not written again (its file exists); an end whose frame
    died with an earlier process (or that a restart ended) is skipped and counted
    (``frames_lost``), as is one whose frame never came within ``FRAME_WAIT_S``."""

    idle_interval = 0.1

    def __init__(self, config: SnapshotOutput, draw: DrawSection, journal: Journal,
                 metrics: Metrics) -> None:
        super().__init__(config, draw, 64, metrics)
        self.cursor = journal.cursor(self.name)
        self.started_after = journal.last_seq()  # ends up to here: frames of an older process
        self.jobs: dict[str, SnapshotJob] = {}
        self.frames_lost = 0
        self._waiting_since: float | None = None

    def handle(self, result: FrameResult) -> None:
        for job in result.snapshots:
            self.jobs[job.event_id] = job
        while len(self.jobs) > MAX_HELD_JOBS:  # ends never journaled (journal disk full)
            self.jobs.pop(next(iter(self.jobs)))
        self._drain()

    def idle(self) -> None:
        self._drain()
        super().idle()

    def close(self) -> None:
        deadline = time.monotonic() + FRAME_WAIT_S
        while self._drain() and time.monotonic() < deadline:
            time.sleep(0.05)

    def _drain(self) -> bool:
        """Deliver what the cursor has; returns whether it waits for a frame."""
        try:
            while batch := self.cursor.read_batch(200):
                done = 0
                for entry in batch:
                    if not self._deliver(entry):
                        break
                    done = entry.seq
                else:
                    self.cursor.ack(batch[-1].seq)
                    continue
                if done:
                    self.cursor.ack(done)
                self.cursor.rewind()
                return True
        except sqlite3.Error as exc:
            self.cursor.rewind()
            log.warning("snapshots: cannot record progress in the journal (%s); retrying", exc)
        return False

    def _deliver(self, entry: Entry) -> bool:
        """Handle one journal entry; False: its frame has not arrived yet (try again later)."""
        if '"type":"end"' not in entry.payload:
            return True
        after = json.loads(entry.payload)["after"]
        path, event_id = after.get("snapshot"), str(after["id"])
        if not path:
            return True
        job = self.jobs.pop(event_id, None)
        if job is not None:
            self._waiting_since = None
            self.write(job)
            return True
        if Path(path).exists():  # written before a crash, not acknowledged
            return True
        if entry.seq > self.started_after and after.get("end_reason") != "restart":
            now = time.monotonic()
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < FRAME_WAIT_S:
                return False
        self._waiting_since = None
        self.frames_lost += 1
        self.metrics.faults.sink_set(self.name, "frames_lost", self.frames_lost)
        log.info("snapshot of event %s not written: its frame is gone (a restart)", event_id)
        return True
