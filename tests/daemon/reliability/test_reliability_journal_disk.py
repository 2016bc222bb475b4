"""Full disks and the journal, on real small file systems (tmpfs, mounted as root).

- The event log's file system fills up: MQTT and the event database go on, exactly; once space
  returns (the tmpfs is remounted larger) the event log catches up: every output then holds
  exactly the journal's messages, in order.
- The journal's own file system fills up: new event messages are held in memory (one clear log
  line), nothing the journal already holds is lost, and once space returns the held messages
  are journaled, in order, and every output gets exactly the journal's messages.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemon_helpers import (
    DaemonProcess,
    daemon_config,
    free_port,
    looping_camera,
    wait_until,
    write_yaml,
)
from tests.daemon.reliability.fault_helpers import (
    Broker,
    PersistentSubscriber,
    check_chains,
    health,
    report_figure,
    wait_for,
)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.fail(f"cannot mount a small tmpfs for the disk-full test (needs root): "
                    f"{done.stderr.strip()}", pytrace=False)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _space_returns(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


def _journal(path: Path) -> list[str]:
    with sqlite3.connect(path, timeout=30) as db:
        return [row[0] for row in db.execute("SELECT payload FROM messages ORDER BY seq")]


def _sinks(port: int) -> dict[str, Any]:
    return health(port).get("faults", {}).get("sinks", {})


def _run(tmp_path: Path, demo_model: Path, video: Path, broker: Broker, port: int,
         outputs: dict[str, Any]) -> DaemonProcess:
    base = {"http": {"enabled": True, "port": port},
            "database": {"enabled": True, "path": "events.db"},
            "mqtt": {"enabled": True, "port": broker.port, "topic_prefix": "jd",
                     "reconnect_min_s": 1, "reconnect_max_s": 2}}
    config = daemon_config(demo_model, video, cameras=[looping_camera(video)],
                           outputs={**base, **outputs},
                           events={"end_after_s": 0.5, "update_interval_s": 0.2,
                                   "update_box_iou": 0.95})
    return DaemonProcess(write_yaml(tmp_path / "c.yaml", config), tmp_path, stats=False)


def _every_output_is_the_journal(tmp_path: Path, log: Path, journal: list[str],
                                 subscriber: PersistentSubscriber) -> None:
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines == journal
    check_chains(lines, "event log")
    assert wait_until(lambda: len(subscriber.received()) >= len(journal), 60)
    assert not wait_until(lambda: len(subscriber.received()) > len(journal), 2)
    assert subscriber.received() == journal
    last: dict[str, Any] = {}
    for text in journal:
        message = json.loads(text)
        last[message["after"]["id"]] = message["after"]
    with sqlite3.connect(tmp_path / "events.db", timeout=30) as db:
        stored = {row[0]: json.loads(row[1]) for row in db.execute("SELECT id, state FROM events")}
    assert stored == last


def test_event_log_disk_full_loses_and_repeats_nothing_anywhere(
        tmp_path: Path, small_fs: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(30, seed=21)
    broker = Broker.create(tmp_path / "broker")
    broker.start()
    subscriber = PersistentSubscriber(broker.port, "jd", "jd-log", qos=2)
    port = free_port()
    log = small_fs / "events.jsonl"
    daemon = _run(tmp_path, demo_model, video, broker, port,
                  {"event_log": {"path": str(log), "fsync": "always"}})
    try:
        wait_for(lambda: not _sinks(port).get("event_log", {}).get("ok", True), 240,
                 "the event log's disk to fill up", daemon.stderr)
        in_log = len(log.read_text(encoding="utf-8").splitlines())
        # the other outputs go on while the event log cannot write
        wait_for(lambda: len(subscriber.received()) > in_log + 10, 120,
                 "MQTT deliveries past the full event log", daemon.stderr)
        behind = len(subscriber.received()) - in_log
        _space_returns(small_fs)
        wait_for(lambda: all(s.get("ok", True) for s in _sinks(port).values()), 120,
                 "every output working again", daemon.stderr)
    finally:
        code = daemon.terminate()
    try:
        assert code == 0, daemon.stderr()
        stderr = daemon.stderr()
        assert "Traceback" not in stderr, stderr[-3000:]
        assert stderr.count("event_log: cannot write") == 1, stderr[-3000:]
        journal = _journal(tmp_path / "var" / "journal.db")
        _every_output_is_the_journal(tmp_path, log, journal, subscriber)
        report_figure("journal_event_log_disk_full_messages", len(journal))
        report_figure("journal_event_log_disk_full_behind", behind)
    finally:
        subscriber.close()
        broker.stop()


def test_journal_disk_full_holds_new_messages_and_loses_none_accepted(
        tmp_path: Path, small_fs: Path, demo_model: Path, demo_video) -> None:  # noqa: ANN001
    video, _ = demo_video(30, seed=22)
    broker = Broker.create(tmp_path / "broker")
    broker.start()
    subscriber = PersistentSubscriber(broker.port, "jd", "jd-journal", qos=2)
    port = free_port()
    log = tmp_path / "events.jsonl"
    daemon = _run(tmp_path, demo_model, video, broker, port,
                  {"journal": {"path": str(small_fs / "journal.db")}})
    try:
        wait_for(lambda: not _sinks(port).get("journal", {}).get("ok", True), 240,
                 "the journal's disk to fill up", daemon.stderr)
        accepted = _journal(small_fs / "journal.db")
        wait_for(lambda: _sinks(port)["journal"].get("held", 0) > 5, 120,
                 "event messages held while the journal is full", daemon.stderr)
        held = _sinks(port)["journal"]["held"]
        _space_returns(small_fs)
        wait_for(lambda: (s := _sinks(port)) and s["journal"].get("ok") and
                 s["journal"].get("held", 0) == 0, 120, "the journal appending again",
                 daemon.stderr)
        # MQTT delivers from the journal at its own pace (on a loaded machine: behind); what is
        # left at a stop goes out at the next start, so wait for it before stopping
        wait_for(lambda: _sinks(port).get("mqtt", {}).get("journal_pending") == 0, 120,
                 "MQTT delivering every journaled message", daemon.stderr)
    finally:
        code = daemon.terminate()
    try:
        assert code == 0, daemon.stderr()
        stderr = daemon.stderr()
        assert "Traceback" not in stderr, stderr[-3000:]
        assert stderr.count("cannot append") == 1, stderr[-3000:]
        assert "held in memory" in stderr and "appending again" in stderr
        journal = _journal(small_fs / "journal.db")
        assert journal[:len(accepted)] == accepted  # nothing accepted before was lost
        assert len(journal) >= len(accepted) + held  # the held ones were journaled after
        _every_output_is_the_journal(tmp_path, log, journal, subscriber)
        check_chains(journal, "journal")  # no message missing in any event's life
        report_figure("journal_disk_full_held", held)
        report_figure("journal_disk_full_messages", len(journal))
    finally:
        subscriber.close()
        broker.stop()
