"""Retention of events and footage on a real database and real files."""

from __future__ import annotations

from pathlib import Path

from daemon.config.record_schema import RecordSection
from daemon.config.schema import RecordingsOutput
from daemon.recordings.db import EventDB
from daemon.recordings.retention import DAY_S, DECIDE_MARGIN_S, Pruner
from daemon.structures.messages import EventMessage, iso_time

NOW = 1_800_000_000.0


def _setup(tmp_path: Path, mode: str, **out: object) -> tuple[EventDB, Pruner, list[Path]]:
    db = EventDB(tmp_path / "events.db")
    folder = tmp_path / "rec" / "cam"
    folder.mkdir(parents=True)
    files = []
    for i in range(10):  # 10 s segments ending 2 days ... down to the recent past
        path = folder / f"1-{i:06d}.mp4"
        path.write_bytes(b"x" * 1000)
        start = NOW - 2 * DAY_S + i * 10 if i < 5 else NOW - 50 + (i - 5) * 10
        db.add_segment("cam", path, start, start + 10, 1000, False)
        files.append(path)
    record = RecordSection(mode=mode, retain_days=1, events_retain_days=3, pre_capture_s=5,
                           post_capture_s=5)
    config = RecordingsOutput(dir=tmp_path / "rec", min_free_bytes=0, **out)
    return db, Pruner(db, config, {"cam": record}, None), files


def _event(db: EventDB, start: float, end: float) -> None:
    after = {"id": f"cam-{start}", "camera": "cam", "label": "square",
             "start_time": iso_time(start), "last_time": iso_time(end),
             "end_time": iso_time(end), "entered_zones": []}
    db.upsert([EventMessage.make("end", None, after)], NOW)


def test_events_mode_keeps_only_footage_around_events(tmp_path: Path) -> None:
    db, pruner, files = _setup(tmp_path, "events")
    _event(db, NOW - 2 * DAY_S + 22, NOW - 2 * DAY_S + 24)  # in segment 2, window 17..29
    pruner.run(NOW)
    kept = {Path(s.path) for s in db.segments("cam", None, None)}
    assert kept == {files[1], files[2], *files[5:]}  # segment 1 holds the pre-capture
    assert all(p.exists() == (p in kept) for p in files)
    assert NOW - 50 > NOW - 5 - DECIDE_MARGIN_S  # the recent ones are not decided yet


def test_continuous_mode_keeps_retain_days(tmp_path: Path) -> None:
    db, pruner, files = _setup(tmp_path, "continuous")
    pruner.run(NOW)
    kept = {Path(s.path) for s in db.segments("cam", None, None)}
    assert kept == set(files[5:])


def test_budget_deletes_the_oldest_first(tmp_path: Path) -> None:
    db, pruner, files = _setup(tmp_path, "continuous", max_bytes=3000)
    pruner.run(NOW - 3 * DAY_S)  # nothing is past retention yet
    kept = [Path(s.path) for s in db.segments("cam", None, None)]
    assert kept == files[7:] and not any(p.exists() for p in files[:7])
    assert pruner.disk_full_deleted == 7


def test_old_events_go_with_their_snapshot(tmp_path: Path) -> None:
    db, pruner, _ = _setup(tmp_path, "events")
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    pruner.snapshot_dir = snaps
    old = snaps / "old.jpg"
    old.write_bytes(b"jpg")
    after = {"id": "cam-old", "camera": "cam", "label": "square",
             "start_time": iso_time(NOW - 4 * DAY_S), "last_time": iso_time(NOW - 4 * DAY_S),
             "end_time": iso_time(NOW - 4 * DAY_S), "entered_zones": [],
             "snapshot": str(old)}
    db.upsert([EventMessage.make("end", None, after)], NOW)
    _event(db, NOW - DAY_S, NOW - DAY_S + 1)
    pruner.run(NOW)
    assert db.event("cam-old") is None and not old.exists()
    assert db.event(f"cam-{NOW - DAY_S}") is not None
