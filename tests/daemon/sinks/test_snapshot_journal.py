"""Snapshots as a journal consumer: written in the journal's order when their end message and
frame are both there; none twice after a crash; ends whose frame is gone are skipped, counted."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from daemon.config.schema import DrawSection, SnapshotOutput
from daemon.sinks import snapshots as snapshots_module
from daemon.sinks.event_journal import Journal, JournalMessage
from daemon.sinks.snapshots import JournalSnapshotSink
from daemon.structures.frame import Frame
from daemon.structures.metrics import Metrics
from daemon.structures.results import FrameResult
from daemon.structures.snapshot import BestShot, SnapshotJob


def _end(folder: Path, event: str, reason: str = "gone") -> JournalMessage:
    after = {"id": event, "camera": "cam", "snapshot": str(folder / "cam" / f"{event}.jpg"),
             "end_reason": reason}
    return JournalMessage(f"{event}:end", "cam", json.dumps(
        {"v": 1, "type": "end", "before": None, "after": after}, separators=(",", ":")))


def _job(folder: Path, event: str) -> SnapshotJob:
    frame = Frame("cam", 1, 0.0, time.time(), np.full((60, 80, 3), 90, np.uint8))
    return SnapshotJob(folder / "cam" / f"{event}.jpg", BestShot(frame, [5.0, 5.0, 40.0, 40.0],
                                                                 0.9), "square", event)


def _result(job: SnapshotJob) -> FrameResult:
    result = FrameResult.__new__(FrameResult)
    result.snapshots = [job]
    return result


def _sink(folder: Path, journal: Journal) -> JournalSnapshotSink:
    sink = JournalSnapshotSink(SnapshotOutput(enabled=True, dir=folder), DrawSection(), journal,
                               Metrics())
    sink.open()
    return sink


def test_written_once_in_journal_order_and_lost_frames_counted(tmp_path: Path,
                                                                monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(snapshots_module, "FRAME_WAIT_S", 0.3)
    folder = tmp_path / "snaps"
    journal = Journal(tmp_path / "j.db")
    journal.open()
    journal.append([_end(folder, "old")])  # its frame died with the previous process
    sink = _sink(folder, journal)
    journal.append([_end(folder, "a")])
    sink.idle()  # a's frame not here yet: waits, "old" is skipped at once
    assert sink.frames_lost == 1 and journal.position("snapshots") == 1
    sink.handle(_result(_job(folder, "a")))
    assert (folder / "cam" / "a.jpg").is_file() and journal.position("snapshots") == 2
    journal.append([_end(folder, "b"), _end(folder, "c", reason="restart")])
    deadline = time.monotonic() + 10
    while journal.position("snapshots") < 4 and time.monotonic() < deadline:
        sink.idle()  # b's frame never comes: skipped after FRAME_WAIT_S; c at once
        time.sleep(0.05)
    assert sink.frames_lost == 3 and journal.position("snapshots") == 4
    # a crash after writing "d" but before acknowledging it: the next process does not redo it
    journal.append([_end(folder, "d")])
    sink.write(_job(folder, "d"))
    written = (folder / "cam" / "d.jpg").stat().st_mtime_ns
    again = _sink(folder, journal)
    again.idle()
    assert again.frames_lost == 0 and journal.position("snapshots") == 5
    assert (folder / "cam" / "d.jpg").stat().st_mtime_ns == written
