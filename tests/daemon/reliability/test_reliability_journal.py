"""The daemon killed with SIGKILL at random moments (the journal on, by default): every output
ends up holding exactly the journal's messages, in order (nothing lost, nothing twice)."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    looping_camera,
    wait_until,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import (
    Broker,
    PersistentSubscriber,
    children_of,
    report_figure,
)


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


def _kill_rounds(tmp_path: Path, demo_model: Path, video: Path, outputs: dict[str, Any],
                 rounds: int) -> list[str]:
    """``rounds`` runs on a looping camera killed at random moments, then one clean run."""
    events = {"update_interval_s": 0.2, "update_box_iou": 0.95}  # many messages per event
    live = daemon_config(demo_model, video, cameras=[looping_camera(video)], outputs=outputs,
                         events=events)
    rng = random.Random(19)
    for _ in range(rounds):
        before = len(_journal(JOURNAL(tmp_path)))
        daemon = DaemonProcess(write_yaml(tmp_path / "live.yaml", live), tmp_path, stats=False)
        assert wait_until(lambda n=before: len(_journal(JOURNAL(tmp_path))) > n, 240), \
            daemon.stderr()
        time.sleep(rng.uniform(0.0, 2.0))  # the random moment of the kill
        _kill_9(daemon)
    final = daemon_config(demo_model, video, outputs=outputs, events=events)  # plays once
    daemon = DaemonProcess(write_yaml(tmp_path / "final.yaml", final), tmp_path, stats=False)
    assert daemon.wait(300) == 0, daemon.stderr()
    return _journal(JOURNAL(tmp_path))


ROUNDS = 5


def JOURNAL(folder: Path) -> Path:  # noqa: N802 - the default journal of a config in folder
    return folder / "var" / "journal.db"

EVENT_LOG = {"path": "events.jsonl", "fsync": "always", "max_bytes": 4096, "backups": 1000}


def test_kill_9_rounds_event_log_holds_exactly_the_journal(
        tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(30, seed=5)
    outputs = {"event_log": EVENT_LOG}  # the journal is on by default
    journal = _kill_rounds(tmp_path, demo_model, video, outputs, rounds=4)
    assert len(journal) > 20
    assert _log_lines(tmp_path) == journal
    assert len(list(tmp_path.glob("events.jsonl.*"))) >= 2  # rotated along the way
    report_figure("journal_kill9_rounds", 4)
    report_figure("journal_messages_after_kill9_rounds", len(journal))


def _database_states(path: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(path, timeout=30) as db:
        return {row[0]: json.loads(row[1]) for row in db.execute("SELECT id, state FROM events")}


def test_kill_9_rounds_with_every_output_on(
        tmp_path: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    """Event log, MQTT (QoS 2 subscriber), event database and snapshots on, the daemon killed
    at random moments: the event log and the subscriber's stream are exactly the journal (no
    message lost, none twice, same order), the database holds every event's last state."""
    video, _ = demo_video(30, seed=6)
    broker = Broker.create(tmp_path / "broker")
    broker.start()
    subscriber = PersistentSubscriber(broker.port, "jr", "jr-subscriber", qos=2)
    try:
        outputs = {"event_log": EVENT_LOG, "database": {"enabled": True, "path": "events.db"},
                   "mqtt": {"enabled": True, "port": broker.port, "topic_prefix": "jr",
                            "reconnect_min_s": 1, "reconnect_max_s": 2},
                   "snapshots": {"enabled": True, "dir": "snapshots"}}
        journal = _kill_rounds(tmp_path, demo_model, video, outputs, rounds=ROUNDS)
        assert len(journal) > 10
        assert _log_lines(tmp_path) == journal
        assert wait_until(lambda: len(subscriber.received()) >= len(journal), 60)
        assert not wait_until(lambda: len(subscriber.received()) > len(journal), 2)
        received = subscriber.received()
        assert received == journal  # every message once, in the journal's order, nothing else
        last = {}
        for text in journal:
            message = json.loads(text)
            last[message["after"]["id"]] = message["after"]
        assert _database_states(tmp_path / "events.db") == last
        report_figure("journal_all_outputs_kill9_rounds", ROUNDS)
        report_figure("journal_all_outputs_messages", len(journal))
        report_figure("journal_all_outputs_mqtt_duplicates", len(received) - len(set(received)))
        report_figure("journal_all_outputs_lost", len(set(journal) - set(received)))
    finally:
        subscriber.close()
        broker.stop()
