"""JSON-lines writer: rotation, fsync policy, repair of a torn tail, no torn line on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from daemon.sinks.jsonl import JsonlWriter, repair_tail
from tests.daemon.daemon_helpers import REPO_ROOT, read_jsonl


def line(i: int) -> str:
    return json.dumps({"i": i, "pad": "x" * 40})


def test_rotation_keeps_backups_and_never_splits_a_line(tmp_path: Path) -> None:
    path = tmp_path / "log" / "events.jsonl"
    writer = JsonlWriter(path, max_bytes=1024, backups=2, fsync="never")
    writer.open()
    for i in range(100):
        writer.write_lines([line(i)])
    writer.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    seen = []
    for name in ("events.jsonl.2", "events.jsonl.1", "events.jsonl"):
        part = path.parent / name
        assert part.stat().st_size <= 1024
        seen += [row["i"] for row in read_jsonl(part)]
    assert seen == list(range(100 - len(seen), 100))  # the newest lines, in order


def test_zero_backups_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    writer = JsonlWriter(path, max_bytes=1024, backups=0, fsync="never")
    writer.open()
    for i in range(60):
        writer.write_lines([line(i)])
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["e.jsonl"]
    assert read_jsonl(path)[-1]["i"] == 59


@pytest.mark.parametrize(("policy", "writes", "expected"), [
    ("always", 5, 5 + 1), ("never", 5, 1), ("interval", 5, 1)])
def test_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str,
                      writes: int, expected: int) -> None:
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    writer = JsonlWriter(tmp_path / "e.jsonl", 10**6, 1, fsync=policy, fsync_interval_s=3600)
    writer.open()
    for i in range(writes):
        writer.write_lines([line(i)])
    writer.close()  # close always makes the log durable
    assert len(calls) == expected


def test_repair_tail_cuts_a_partial_last_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    assert repair_tail(path) == len(b'{"c":')
    assert path.read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert repair_tail(path) == 0
    path.write_bytes(b"no newline at all")
    assert repair_tail(path) == len(b"no newline at all") and path.read_bytes() == b""
    writer = JsonlWriter(path, 10**6, 1)
    path.write_bytes(b'{"a":1}\n{"tor')
    writer.open()
    writer.write_lines([line(1)])
    writer.close()
    assert [row.get("a", row.get("i")) for row in read_jsonl(path)] == [1, 1]


def test_a_failing_write_leaves_no_torn_line(tmp_path: Path) -> None:
    """A file-size limit makes the kernel refuse the write half-way (like a full disk)."""
    path = tmp_path / "e.jsonl"
    script = textwrap.dedent(f"""
        import json, resource, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from daemon.sinks.jsonl import JsonlWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
        writer = JsonlWriter(Path({str(path)!r}), 10**6, 1, fsync="always")
        writer.open()
        written = 0
        for i in range(100):
            try:
                writer.write_lines([json.dumps({{"i": i, "pad": "y" * 60}})])
                written += 1
            except OSError as exc:
                print(written, exc.errno)
                break
        writer.close()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    written = int(out[0])
    assert 0 < written < 100
    rows = read_jsonl(path)  # every line complete
    assert [r["i"] for r in rows] == list(range(written))
