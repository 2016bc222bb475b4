"""Schema of the event database, one migration per version (``PRAGMA user_version``).

A database newer than this code is refused (it would be misread); an older one is migrated in
one transaction per step, so a crash mid-way leaves it at the last complete version.
"""

from __future__ import annotations

import sqlite3

from d2common.errors import D2StreamError

#: version N is reached by running MIGRATIONS[N - 1]
MIGRATIONS: tuple[str, ...] = (
    # 1: events and the zones they entered
    """
    CREATE TABLE events (
        id TEXT PRIMARY KEY,
        camera TEXT NOT NULL,
        label TEXT NOT NULL,
        start_time REAL NOT NULL,
        end_time REAL,
        top_score REAL,
        box TEXT,
        snapshot TEXT,
        end_reason TEXT,
        state TEXT NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX events_camera_start ON events (camera, start_time);
    CREATE INDEX events_label_start ON events (label, start_time);
    CREATE INDEX events_start ON events (start_time);
    CREATE INDEX events_open ON events (end_time) WHERE end_time IS NULL;
    CREATE TABLE event_zones (
        event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        zone TEXT NOT NULL,
        PRIMARY KEY (zone, event_id)
    );
    CREATE INDEX event_zones_event ON event_zones (event_id);
    """,
    # 2: footage segments
    """
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        camera TEXT NOT NULL,
        path TEXT NOT NULL UNIQUE,
        start_time REAL NOT NULL,
        end_time REAL NOT NULL,
        bytes INTEGER NOT NULL,
        encoded INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX segments_camera_start ON segments (camera, start_time);
    CREATE INDEX segments_start ON segments (start_time);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class DatabaseError(D2StreamError):
    """The event database cannot be used (newer schema, not a database)."""


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring ``conn`` to :data:`SCHEMA_VERSION`; returns the version it had before."""
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: not an event database ({exc})") from None
    if version > SCHEMA_VERSION:
        raise DatabaseError(f"{path}: schema version {version} is newer than this d2stream "
                            f"knows ({SCHEMA_VERSION}); upgrade d2stream")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        with conn:
            conn.execute("BEGIN")
            for statement in MIGRATIONS[target - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
    return version
