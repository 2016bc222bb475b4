"""The event journal: durable appends, per-output cursors, exactly-once file delivery."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from daemon.sinks.event_journal import CONSUMERS, Journal, JournalMessage, register_consumer
from daemon.sinks.journal_jsonl import JsonlDelivery
from daemon.sinks.jsonl import JsonlWriter
from tests.daemon.reliability.fault_helpers import report_figure

REPO = Path(__file__).resolve().parents[3]


def _messages(*numbers: int) -> list[JournalMessage]:
    return [JournalMessage(f"k{n}", "cam", json.dumps({"n": n})) for n in numbers]


def test_cursors_are_independent_and_persisted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.open()
    assert journal.append(_messages(1, 2, 3)) == 3
    assert journal.append(_messages(3, 4)) == 1  # k3 again: deduplicated
    fast, slow = journal.cursor("fast"), journal.cursor("slow")
    batch = fast.read_batch()
    assert [e.key for e in batch] == ["k1", "k2", "k3", "k4"]
    fast.ack(batch[-1].seq)
    assert [e.key for e in slow.read_batch(2)] == ["k1", "k2"]
    slow.rewind()  # delivery failed: read again from the last acknowledgement
    assert [e.key for e in slow.read_batch(1)] == ["k1"]
    slow.ack(batch[0].seq)
    assert journal.trim() == 1  # only k1 is behind every cursor
    journal.close()
    again = Journal(tmp_path / "j.db")
    again.open()
    assert [e.key for e in again.cursor("slow").read_batch()] == ["k2", "k3", "k4"]
    assert again.cursor("fast").read_batch() == []
    again.close()


def test_a_file_output_does_not_repeat_lines_written_before_a_crash(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.open()
    journal.append(_messages(1, 2, 3))
    path = tmp_path / "events.jsonl"
    # The crash came after two lines reached the file but before they were acknowledged.
    path.write_text(json.dumps({"n": 1}) + "\n" + json.dumps({"n": 2}) + "\n")
    output = JsonlDelivery(journal.cursor("event_log"), JsonlWriter(path, 1 << 30, 0, "always"))
    output.open()
    assert output.pump() == 1
    output.close()
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [1, 2, 3]


def test_consumers_register_by_name() -> None:
    @register_consumer("test-only")
    def factory(*args: object) -> None:
        return None

    try:
        assert CONSUMERS["test-only"] is factory
    finally:
        del CONSUMERS["test-only"]


def _child(folder: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.daemon.sinks.journal_crash_child", str(folder), mode],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _file_lines(folder: Path, name: str) -> list[str]:
    rotated = sorted(folder.glob(f"{name}.*"), key=lambda p: -int(p.suffix[1:]))
    return [line for p in [*rotated, folder / name] if p.exists()
            for line in p.read_text().splitlines()]


def test_kill_9_at_random_moments_loses_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(19)
    for _ in range(6):
        proc = _child(tmp_path, "produce")
        assert proc.stdout is not None
        proc.stdout.readline()  # it appends...
        time.sleep(rng.uniform(0.2, 1.5))  # ...for a random while: the moment of the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    drain = _child(tmp_path, "drain")
    assert drain.wait(120) == 0, drain.stderr.read() if drain.stderr else ""
    with sqlite3.connect(tmp_path / "journal.db") as db:
        journal = [row[0] for row in db.execute("SELECT payload FROM messages ORDER BY seq")]
    assert len(journal) > 100
    assert [json.loads(p)["n"] for p in journal] == list(range(1, len(journal) + 1))
    assert _file_lines(tmp_path, "events.jsonl") == journal  # rotated many times
    assert _file_lines(tmp_path, "mirror.jsonl") == journal
    assert len(list(tmp_path.glob("events.jsonl.*"))) > 3
    report_figure("journal_unit_kill9_messages", len(journal))
