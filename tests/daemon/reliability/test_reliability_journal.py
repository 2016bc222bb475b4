"""The daemon killed with SIGKILL at random moments, journal on: the event log ends up holding
exactly the journal's messages, in order (nothing lost, nothing twice), across rotations."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    looping_camera,
    wait_until,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import children_of, report_figure


def _journal(path: Path) -> list[str]:
    if not path.exists():
        return []
    with sqlite3.connect(path, timeout=30) as db:
        try:
            return [row[0] for row in db.execute("SELECT payload FROM messages ORDER BY seq")]
        except sqlite3.OperationalError:  # created, tables not yet
            return []


def _log_lines(folder: Path) -> list[str]:
    rotated = sorted(folder.glob("events.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    return [line for p in [*rotated, folder / "events.jsonl"] if p.exists()
            for line in p.read_text(encoding="utf-8").splitlines()]


def _kill_9(daemon: DaemonProcess) -> None:
    workers = children_of(daemon.pid)
    os.kill(daemon.pid, signal.SIGKILL)
    daemon.proc.wait(30)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_rounds_event_log_holds_exactly_the_journal(
        tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(30, seed=5)
    outputs = {"journal": {"enabled": True, "path": "journal.db"},
               "event_log": {"path": "events.jsonl", "fsync": "always", "max_bytes": 4096,
                             "backups": 1000}}
    live = daemon_config(demo_model, video, cameras=[looping_camera(video)], outputs=outputs)
    rng = random.Random(19)
    rounds = 4
    for _ in range(rounds):
        before = len(_journal(tmp_path / "journal.db"))
        daemon = DaemonProcess(write_yaml(tmp_path / "live.yaml", live), tmp_path, stats=False)
        assert wait_until(lambda n=before: len(_journal(tmp_path / "journal.db")) > n, 240), \
            daemon.stderr()
        time.sleep(rng.uniform(0.0, 2.0))  # the random moment of the kill
        _kill_9(daemon)
    final = daemon_config(demo_model, video, outputs=outputs)  # plays once, then stops cleanly
    daemon = DaemonProcess(write_yaml(tmp_path / "final.yaml", final), tmp_path, stats=False)
    assert daemon.wait(300) == 0, daemon.stderr()
    journal = _journal(tmp_path / "journal.db")
    assert len(journal) > 20
    assert _log_lines(tmp_path) == journal
    assert len(list(tmp_path.glob("events.jsonl.*"))) >= 2  # rotated along the way
    report_figure("journal_kill9_rounds", rounds)
    report_figure("journal_messages_after_kill9_rounds", len(journal))
