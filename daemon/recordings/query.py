"""Parameters of ``GET /api/events`` and ``/api/recordings``: parsed, checked, turned into SQL.

Every bad value raises :class:`BadParameter` naming the parameter (the API answers 400).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from daemon.recordings.db import wall_time

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_LIMIT = 500
#: limits when none is given (events are paged, segments listed whole up to this)
DEFAULT_LIMIT = {"events": 50, "recordings": 10_000}
MAX_LIMITS = {"events": MAX_LIMIT, "recordings": 10_000}
KNOWN = {"events": {"camera", "label", "zone", "after", "before", "limit", "cursor", "token"},
         "recordings": {"camera", "after", "before", "limit", "token"}}


class BadParameter(ValueError):
    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        super().__init__(f"parameter {name!r}: {problem}")


@dataclass
class Filters:
    camera: str | None = None
    label: str | None = None
    zone: str | None = None
    after: float | None = None
    before: float | None = None
    limit: int = 50
    cursor: tuple[float, str] | None = None

    def sql(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("camera", self.camera), ("label", self.label)):
            if value is not None:
                clauses.append(f"e.{column} = ?")
                params.append(value)
        if self.zone is not None:
            clauses.append("EXISTS (SELECT 1 FROM event_zones z WHERE z.zone = ? AND "
                           "z.event_id = e.id)")
            params.append(self.zone)
        if self.after is not None:
            clauses.append("e.start_time >= ?")
            params.append(self.after)
        if self.before is not None:
            clauses.append("e.start_time < ?")
            params.append(self.before)
        if self.cursor is not None:
            clauses.append("(e.start_time < ? OR (e.start_time = ? AND e.id < ?))")
            params += [self.cursor[0], self.cursor[0], self.cursor[1]]
        return " AND ".join(clauses), params


def parse(query: str, kind: str) -> Filters:
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=False,
                          max_num_fields=20)
    except ValueError:
        raise BadParameter("query", "too many parameters") from None
    out = Filters(limit=DEFAULT_LIMIT[kind])
    for name, given in values.items():
        if name not in KNOWN[kind]:
            raise BadParameter(name, "unknown parameter")
        if len(given) != 1:
            raise BadParameter(name, "given more than once")
        value = given[0]
        if name == "token":
            continue
        if name in ("camera", "label", "zone"):
            if not _NAME.match(value):
                raise BadParameter(name, "expected 1-128 letters, digits or _.:-")
            setattr(out, name, value)
        elif name in ("after", "before"):
            setattr(out, name, parse_time(name, value))
        elif name == "limit":
            out.limit = _limit(value, MAX_LIMITS[kind])
        else:
            out.cursor = decode_cursor(value)
    return out


def parse_time(name: str, value: str) -> float:
    """UNIX seconds or ISO 8601 (``2026-01-02T03:04:05Z``; no zone: UTC)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        text = value if re.search(r"(Z|[+-]\d\d:?\d\d)$", value) else value + "Z"
        result = wall_time(text)
    except ValueError:
        result = None
    if result is None:
        raise BadParameter(name, f"expected UNIX seconds or an ISO 8601 time, got {value!r}")
    return result


def _limit(value: str, most: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise BadParameter("limit", f"expected an integer from 1 to {most}")
    return int(value)


def encode_cursor(start: float, event_id: str) -> str:
    return base64.urlsafe_b64encode(f"{start!r}|{event_id}".encode()).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        start, event_id = text.split("|", 1)
        return float(start), event_id
    except (binascii.Error, UnicodeError, ValueError):
        raise BadParameter("cursor", "not a cursor this API returned") from None


def valid_id(event_id: str) -> bool:
    return bool(_NAME.match(event_id))
