"""The event database (real SQLite files): migrations, upserts from event messages, the restart
ends of events left open, API query parameters and byte ranges."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daemon.recordings.db import EventDB, wall_time
from daemon.recordings.migrations import MIGRATIONS, SCHEMA_VERSION, DatabaseError
from daemon.recordings.query import BadParameter, decode_cursor, encode_cursor, parse
from daemon.recordings.restart import restart_ends
from daemon.sinks.http_api import byte_range
from daemon.structures.messages import EventMessage, iso_time

T0 = 1_800_000_000.0


def state(event_id: str, start: float, last: float, ended: bool = False,
          zones: list[str] | None = None, label: str = "square") -> dict:
    return {"id": event_id, "camera": "cam", "label": label, "track_id": 1,
            "start_time": iso_time(start), "last_time": iso_time(last),
            "end_time": iso_time(last) if ended else None, "top_score": 0.9,
            "box": [1, 2, 3, 4], "best": None, "current_zones": [],
            "entered_zones": zones or [], "snapshot": None}


def test_migrates_a_version_1_database_keeping_its_events(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO events (id, camera, label, start_time, state, updated) VALUES "
                 "('a', 'cam', 'square', 1.0, '{\"id\": \"a\"}', 1.0)")
    conn.commit()
    conn.close()
    db = EventDB(path)
    assert db.previous_version == 1
    assert db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.event("a") == {"id": "a"}
    assert db.segments(None, None, None) == []
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this d2stream knows"):
        EventDB(path)


def test_messages_are_upserted_and_open_events_end_with_restart(tmp_path: Path) -> None:
    db = EventDB(tmp_path / "events.db")
    start = EventMessage.make("start", None, state("e1", T0, T0 + 1, zones=["door"]))
    update = EventMessage.make("update", start.after, state("e1", T0, T0 + 4, zones=["door"]))
    other = EventMessage.make("start", None, state("e2", T0 + 2, T0 + 3, label="circle"))
    end = EventMessage.make("end", other.after, state("e2", T0 + 2, T0 + 5, ended=True,
                                                       label="circle"))
    db.upsert([start, update, other, end], T0 + 6)
    assert db.event("e1")["last_time"] == iso_time(T0 + 4)
    assert [s["id"] for s in db.open_events()] == ["e1"]
    (message,) = restart_ends(db)
    assert message.type == "end" and message.before == update.after
    assert message.after["end_reason"] == "restart"
    assert message.after["end_time"] == iso_time(T0 + 4)
    db.upsert([message], T0 + 7)
    assert db.open_events() == []
    assert db.event("e1")["end_reason"] == "restart"
    where, params = parse("zone=door", "events").sql()
    assert [e["id"] for e in db.query_events(where, params, 10)] == ["e1"]
    where, params = parse("label=circle", "events").sql()
    assert [e["id"] for e in db.query_events(where, params, 10)] == ["e2"]
    where, params = parse(f"after={T0 + 1}", "events").sql()
    assert [e["id"] for e in db.query_events(where, params, 10)] == ["e2"]
    cursor = encode_cursor(wall_time(iso_time(T0 + 2)), "e2")
    where, params = parse(f"cursor={cursor}", "events").sql()
    assert [e["id"] for e in db.query_events(where, params, 10)] == ["e1"]


@pytest.mark.parametrize("query, name", [
    ("limit=0", "limit"), ("limit=501", "limit"), ("limit=x", "limit"),
    ("after=tomorrow", "after"), ("before=2026-13-01", "before"), ("camera=a%20b", "camera"),
    ("cursor=!!", "cursor"), ("label=a&label=b", "label"), ("colour=red", "colour")])
def test_bad_parameters_name_the_parameter(query: str, name: str) -> None:
    with pytest.raises(BadParameter) as info:
        parse(query, "events")
    assert info.value.name == name


def test_times_and_cursors() -> None:
    assert parse("after=2026-01-02T03:04:05Z", "events").after == wall_time(
        "2026-01-02T03:04:05.000Z")
    assert parse("after=2026-01-02T03:04:05", "events").after == parse(
        "after=2026-01-02T03:04:05Z", "events").after
    assert decode_cursor(encode_cursor(12.5, "cam-x-1")) == (12.5, "cam-x-1")


@pytest.mark.parametrize("header, expected", [
    (None, None), ("bytes=0-9", (0, 9)), ("bytes=90-", (90, 99)), ("bytes=-10", (90, 99)),
    ("bytes=95-200", (95, 99)), ("bytes=100-", False), ("bytes=5-2", False),
    ("bytes=-0", False), ("items=0-1", None), ("bytes=0-1,4-5", None)])
def test_byte_ranges(header: str | None, expected: object) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("query, index", [
    ("camera=cam", "events_camera_start"), ("label=square", "events_label_start"),
    ("", "events_start"), ("zone=door", "event_zones")])
def test_queries_use_an_index(tmp_path: Path, query: str, index: str) -> None:
    db = EventDB(tmp_path / "events.db")
    where, params = parse(query, "events").sql()
    sql = ("EXPLAIN QUERY PLAN SELECT state FROM events e" + (f" WHERE {where}" if where else "")
           + " ORDER BY start_time DESC, id DESC LIMIT 10")
    plan = " | ".join(row[-1] for row in db.conn.execute(sql, params))
    assert index in plan, plan
