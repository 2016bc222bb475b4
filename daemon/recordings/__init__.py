"""Recordings and the event database: SQLite index of events and footage segments, the
per-camera recorders (ffmpeg remux or encode), retention and clips (docs/recordings.md)."""
