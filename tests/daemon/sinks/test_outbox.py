"""The MQTT outbox journal: order, deduplication, bounds, torn lines, a failing disk, kill -9."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon.sinks import jsonl
from daemon.sinks.outbox import Message, Outbox, message_key
from daemon.structures.messages import EventMessage
from tests.daemon.daemon_helpers import REPO_ROOT, subprocess_env


def msg(i: int, size: int = 0) -> Message:
    return Message(f"cam-run-{i}-0", "d2stream/cam/events",
                   json.dumps({"event_id": f"cam-run-{i}-0", "pad": "x" * size}))


def opened(path: Path, **kwargs: object) -> Outbox:
    box = Outbox(path, **{"max_bytes": 1_000_000, **kwargs})  # type: ignore[arg-type]
    box.open()
    return box


def keys(box: Outbox) -> list[str]:
    return [m.key for m in box.pending()]


def journal_lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_pending_messages_survive_a_restart_in_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    box = opened(path)
    assert box.add([msg(i) for i in range(5)]) == 5
    box.ack("cam-run-1-0")
    box.ack("cam-run-3-0")
    box.add([msg(5)])
    box.close()
    again = opened(path)
    assert keys(again) == ["cam-run-0-0", "cam-run-2-0", "cam-run-4-0", "cam-run-5-0"]
    assert again.stats["replayed"] == 4
    assert [m.payload for m in again.pending()][0] == msg(0).payload
    assert "cam-run-1-0" not in {r["id"] for r in journal_lines(path) if r["op"] == "add"}


def test_duplicates_are_published_once(tmp_path: Path) -> None:
    box = opened(tmp_path / "o.jsonl")
    assert box.add([msg(1), msg(1), msg(2)]) == 2
    assert box.add([msg(2)]) == 0
    box.ack("cam-run-1-0")
    assert box.add([msg(1)]) == 0  # already delivered
    box.close()
    again = opened(tmp_path / "o.jsonl")
    assert again.add([msg(1), msg(2)]) == 0  # acked ids and pending ids survive the restart
    assert keys(again) == ["cam-run-2-0"] and again.stats["duplicates"] == 2


def test_each_message_of_an_event_has_its_own_key() -> None:
    after = {"id": "door-20260102T030405.678Z-3", "camera": "door", "frame": 7}
    start = EventMessage.make("start", None, after)
    update = EventMessage.make("update", after, {**after, "frame": 9})
    end = EventMessage.make("end", after, {**after, "frame": 9})
    keys = [message_key(m) for m in (start, update, end)]
    assert len(set(keys)) == 3 and all(k.startswith(f"{after['id']}:") for k in keys)
    again = EventMessage.make("update", after, {**after, "frame": 9})
    assert message_key(again) == message_key(update)  # the same message: deduplicated

    class Explicit:
        json = '{"a": 1}'
        message_id = "door-1:end"

    assert message_key(Explicit()) == "door-1:end"
    assert message_key(type("Bare", (), {"json": "{}"})()).startswith("sha1:")


def test_a_torn_last_line_is_dropped_and_everything_before_kept(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    box = opened(path)
    box.add([msg(i) for i in range(3)])
    box.close()
    with open(path, "ab") as fh:
        fh.write(msg(3).record().encode()[:40])  # power cut in the middle of a line
    again = opened(path)
    assert keys(again) == ["cam-run-0-0", "cam-run-1-0", "cam-run-2-0"]
    assert len(journal_lines(path)) == 3  # repaired and compacted: every line whole


def test_a_corrupt_line_in_the_middle_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    lines = [msg(0).record(), "{not json", '{"op": "add"}', msg(1).record()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    box = opened(path)
    assert keys(box) == ["cam-run-0-0", "cam-run-1-0"]
    assert box.stats["corrupt_lines"] == 2


def test_full_outbox_drops_the_oldest_and_counts_them(tmp_path: Path, caplog) -> None:  # noqa: ANN001
    path = tmp_path / "o.jsonl"
    box = opened(path, max_bytes=20_000)
    for i in range(200):
        box.add([msg(i, size=150)])
        assert box.view()["outbox_pending_bytes"] <= 20_000
        assert path.stat().st_size <= 2 * 20_000
    pending = keys(box)
    dropped = box.stats["dropped"]
    assert dropped > 0 and len(pending) + dropped == 200
    assert pending == [f"cam-run-{i}-0" for i in range(dropped, 200)]  # the newest kept
    assert "dropped the" in caplog.text
    box.close()
    assert keys(opened(path, max_bytes=20_000)) == pending


def test_memory_only_outbox_bounds_the_message_count() -> None:
    box = Outbox(None, max_bytes=10_000_000, max_messages=100)
    box.open()
    box.add([msg(i) for i in range(150)])
    assert len(box) <= 100 and box.stats["dropped"] == 150 - len(box)
    assert keys(box)[-1] == "cam-run-149-0"


def test_acknowledged_messages_are_compacted_away(tmp_path: Path) -> None:
    path = tmp_path / "o.jsonl"
    box = opened(path, max_bytes=50_000)
    for i in range(2000):
        box.add([msg(i, size=100)])
        box.ack(msg(i).key)
    assert len(box) == 0
    assert path.stat().st_size < 2 * 50_000
    box.close()


def test_unwritable_journal_keeps_messages_in_memory_then_rewrites_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "o.jsonl"
    box = opened(path)
    box.add([msg(0)])
    real_write, full = os.write, {"on": True}

    def write(fd: int, data: bytes) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(jsonl.os, "write", write)
    monkeypatch.setattr("daemon.sinks.outbox.os.write", write)
    box.add([msg(1), msg(2)])
    assert not box.journal_ok and "No space left on device" in (box.journal_error or "")
    assert keys(box) == ["cam-run-0-0", "cam-run-1-0", "cam-run-2-0"]
    box.ack("cam-run-0-0")  # delivery goes on meanwhile
    box._next_retry = 0.0
    box.retry()
    assert not box.journal_ok  # still full
    full["on"] = False
    box._next_retry = 0.0
    box.retry()
    assert box.journal_ok and box.journal_error is None
    box.add([msg(3)])
    box.close()
    assert keys(opened(path)) == ["cam-run-1-0", "cam-run-2-0", "cam-run-3-0"]


def test_a_journal_folder_that_could_not_be_made_is_made_when_it_can(tmp_path: Path) -> None:
    """Regression: the retry wrote into a folder no one created, and the outbox stayed failed
    with "No such file or directory" for good."""
    blocker = tmp_path / "state"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    path = blocker / "var" / "outbox.jsonl"
    box = opened(path)
    assert not box.journal_ok
    box.add([msg(0)])
    blocker.unlink()  # the folder can be created now
    box._next_retry = 0.0
    box.retry()
    assert box.journal_ok and box.journal_error is None, box.journal_error
    box.add([msg(1)])
    box.close()
    assert keys(opened(path)) == ["cam-run-0-0", "cam-run-1-0"]


_WRITER = """
import sys
from pathlib import Path
from daemon.sinks.outbox import Message, Outbox
box = Outbox(Path(sys.argv[1]), max_bytes=50_000_000, fsync="always")
box.open()
run, i = sys.argv[2], 0
def say(line):
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()
while True:
    box.add([Message(f"{run}-{i + j}", "t", "x" * 200) for j in range(3)])
    i += 3
    say(f"added {i}")  # after add returned: these are accepted
    if i % 6 == 0:
        say(f"ack {run}-{i - 6}")  # before the ack: no acknowledgement goes unannounced
        box.ack(f"{run}-{i - 6}")
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_during_writes_loses_nothing_accepted(tmp_path: Path, seed: int) -> None:
    """A writer killed with SIGKILL at random moments, four runs on the same journal: it opens
    cleanly each time and every message a run had accepted (``add`` returned: written and
    fsynced) is still pending, except those it acknowledged."""
    path = tmp_path / "o.jsonl"
    rng = random.Random(seed)
    expected: set[str] = set()
    for run in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), f"r{run}"],
                                cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("added"), "the writer did not start"
        time.sleep(rng.uniform(0.05, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        said = [line.split() for line in [first, *proc.stdout.read().splitlines()]]
        proc.wait(10)
        accepted = max(int(w[1]) for w in said if w[:1] == ["added"])
        acked = {w[1] for w in said if w[:1] == ["ack"]}  # announced, maybe not journaled
        expected |= {f"r{run}-{n}" for n in range(accepted)} - acked
        box = opened(path, max_bytes=50_000_000)
        lost = expected - {m.key for m in box.pending()}
        assert not lost, f"accepted messages lost after kill -9: {sorted(lost)[:5]}"
        assert box.stats["corrupt_lines"] == 0
        box.close()
