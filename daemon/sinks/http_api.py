"""Review API of the live-view server (same server, same credentials):

- ``GET /api/events?camera=&label=&zone=&after=&before=&limit=&cursor=``: newest first, at most
  ``limit``; ``next_cursor`` continues the list;
- ``GET /api/events/<id>``, ``/api/events/<id>/snapshot.jpg``, ``/api/events/<id>/clip.mp4``
  (range requests: 206);
- ``GET /api/recordings?camera=&after=&before=&limit=``: the footage segments;
- ``DELETE /api/events/<id>``: only when the server has credentials (token or user name and
  password), even on loopback; without them it answers 403.

Bad parameters get 400 with ``{"error": ..., "parameter": ...}``; unknown ids 404.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from daemon.config.schema import DaemonConfig
from daemon.recordings.clips import clip_window, make_clip, thumbnail
from daemon.recordings.db import EventDB, wall_time
from daemon.recordings.query import BadParameter, encode_cursor, parse, valid_id
from daemon.sinks.http_review import review_asset, with_review

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_EVENT_ROUTE = re.compile(r"^/api/events/([^/]+)(/snapshot\.jpg|/clip\.mp4)?$")


class ReviewApi:
    """Answers ``/api/...`` requests (and the review page's files) from the event database."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.db = EventDB(config.outputs.database.path)
        rec = config.outputs.recordings
        self.recording = rec.enabled
        self.ffmpeg = rec.ffmpeg
        self.clip_dir = rec.dir / ".clips"
        self.cameras = {c.name: config.camera_record(c) for c in config.enabled_cameras()}
        snapshots = config.outputs.snapshots
        self.snapshot_dir = snapshots.dir.resolve() if snapshots.enabled else None

    def page(self, html: str, token_query: str, cameras: list[str]) -> str:
        return with_review(html, token_query, cameras)

    def get(self, handler: Any, path: str, query: str) -> bool:
        """Answer ``path`` when it is one of ours; ``False`` otherwise."""
        asset = review_asset(path)
        if asset is not None:
            handler._send(200, asset[0], asset[1])
            return True
        if not path.startswith("/api/"):
            return False
        try:
            if path == "/api/events":
                self._list(handler, query)
            elif path == "/api/recordings":
                self._recordings(handler, query)
            else:
                self._event_route(handler, path)
        except BadParameter as exc:
            _json(handler, 400, {"error": str(exc), "parameter": exc.name})
        return True

    def delete(self, handler: Any, path: str, credentials_required: bool) -> None:
        match = _EVENT_ROUTE.match(path)
        if match is None or match.group(2):
            _json(handler, 404, {"error": "not found"})
            return
        if not credentials_required:
            _json(handler, 403, {"error": "DELETE needs credentials: set outputs.http.token "
                                 "(or username and password)"})
            return
        event_id = match.group(1)
        snapshot = self.db.delete_event(event_id) if valid_id(event_id) else None
        if snapshot is None:
            _json(handler, 404, {"error": f"unknown event {event_id!r}"})
            return
        self._remove_snapshot(snapshot)
        for clip in self.clip_dir.glob(f"{event_id}-*.mp4"):
            clip.unlink(missing_ok=True)
        log.info("event %s deleted through the API", event_id)
        _json(handler, 200, {"deleted": event_id})

    # -- routes ------------------------------------------------------------------------------
    def _list(self, handler: Any, query: str) -> None:
        filters = parse(query, "events")
        where, params = filters.sql()
        rows = self.db.query_events(where, params, filters.limit + 1)
        more = len(rows) > filters.limit
        rows = rows[:filters.limit]
        cursor = None
        if more and rows:
            cursor = encode_cursor(wall_time(rows[-1]["start_time"]) or 0.0, rows[-1]["id"])
        _json(handler, 200, {"events": [self._describe(e) for e in rows],
                             "next_cursor": cursor})

    def _recordings(self, handler: Any, query: str) -> None:
        filters = parse(query, "recordings")
        segments = self.db.segments(filters.camera, filters.after, filters.before,
                                    filters.limit)
        _json(handler, 200, {"segments": [s.to_dict() for s in segments]})

    def _event_route(self, handler: Any, path: str) -> None:
        match = _EVENT_ROUTE.match(path)
        event = None
        if match is not None and valid_id(match.group(1)):
            event = self.db.event(match.group(1))
        if event is None:
            _json(handler, 404, {"error": "unknown event" if match else "not found"})
            return
        part = match.group(2) if match else None
        if part is None:
            _json(handler, 200, self._describe(event))
        elif part == "/snapshot.jpg":
            self._send_snapshot(handler, event)
        else:
            clip = self._clip(event)
            if clip is None:
                _json(handler, 404, {"error": "no footage covers this event"})
            else:
                send_file(handler, clip, "video/mp4")

    def _send_snapshot(self, handler: Any, event: dict[str, Any]) -> None:
        """The snapshot file, else a frame of the event's footage, else 404."""
        snapshot = self._snapshot(event)
        if snapshot is not None:
            send_file(handler, snapshot, "image/jpeg")
            return
        data = thumbnail(self.db, self.ffmpeg, event, self.clip_dir) if self.recording \
            else None
        if data is None:
            _json(handler, 404, {"error": "this event has no snapshot and no footage"})
        else:
            handler._send(200, "image/jpeg", data)

    # -- helpers -----------------------------------------------------------------------------
    def _describe(self, event: dict[str, Any]) -> dict[str, Any]:
        start, end = wall_time(event["start_time"]), wall_time(event.get("end_time"))
        out = dict(event)
        out["duration"] = None if end is None or start is None else round(end - start, 3)
        record = self.cameras.get(event["camera"])
        out["has_clip"] = bool(self.recording and record is not None and record.mode != "off"
                               and self.db.segments(event["camera"], *self._window(event),
                                                    limit=1))
        # a thumbnail: the snapshot file, or a frame cut from the footage
        out["has_snapshot"] = self._snapshot(event) is not None or out["has_clip"]
        return out

    def _window(self, event: dict[str, Any]) -> tuple[float, float]:
        record = self.cameras.get(event["camera"])
        pre, post = (record.pre_capture_s, record.post_capture_s) if record else (0.0, 0.0)
        return clip_window(event, pre, post)

    def _snapshot(self, event: dict[str, Any]) -> Path | None:
        name = event.get("snapshot")
        if not name or self.snapshot_dir is None:
            return None
        path = Path(name).resolve()
        if not path.is_relative_to(self.snapshot_dir) or not path.is_file():
            return None
        return path

    def _remove_snapshot(self, name: str) -> None:
        path = self._snapshot({"snapshot": name})
        if path is not None:
            path.unlink(missing_ok=True)

    def _clip(self, event: dict[str, Any]) -> Path | None:
        record = self.cameras.get(event["camera"])
        if not self.recording or record is None:
            return None
        return make_clip(self.db, self.ffmpeg, event, record.pre_capture_s,
                         record.post_capture_s, self.clip_dir)


def _json(handler: Any, code: int, body: dict[str, Any]) -> None:
    handler._send(code, "application/json", json.dumps(body, default=str).encode())


def byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """``(first, last)`` of a ``Range: bytes=`` header; ``None``: whole file; ``False``:
    unsatisfiable (416)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or not (match.group(1) or match.group(2)):
        return None  # not a single byte range: the whole file (RFC 9110 allows ignoring it)
    first, last = match.group(1), match.group(2)
    if not first:  # the last N bytes
        count = int(last)
        return (max(0, size - count), size - 1) if count and size else False
    start = int(first)
    if start >= size:
        return False
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if end >= start else False


def send_file(handler: Any, path: Path, content_type: str) -> None:
    """Serve a file, honouring a single byte range (206 / 416)."""
    with open(path, "rb") as stream:
        size = path.stat().st_size
        wanted = byte_range(handler.headers.get("Range"), size)
        if wanted is False:
            handler._send(416, "text/plain", b"range not satisfiable\n",
                          (("Content-Range", f"bytes */{size}"), ("Accept-Ranges", "bytes")))
            return
        first, last = wanted if isinstance(wanted, tuple) else (0, size - 1)
        handler.send_response(206 if isinstance(wanted, tuple) else 200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(max(0, last - first + 1)))
        handler.send_header("Accept-Ranges", "bytes")
        if isinstance(wanted, tuple):
            handler.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        handler.send_header("X-Content-Type-Options", "nosniff")
        handler.send_header("Cache-Control", "private, max-age=60")
        handler.end_headers()
        stream.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            data = stream.read(min(CHUNK, remaining))
            if not data:
                break
            handler.wfile.write(data)
            remaining -= len(data)
