"""Config of recordings: ``record:`` (per camera overridable like ``detect:``); the outputs
``database`` and ``recordings`` are in :mod:`daemon.config.schema` (docs/recordings.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EncodeSection(_Section):
    """How a raw source (or a stream that cannot be remuxed) is encoded, once."""

    fps: float = Field(default=10.0, gt=0, le=120)
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = \
        "ultrafast"
    crf: int = Field(default=26, ge=0, le=51)
    # a keyframe every gop_s seconds: clips start at a keyframe, at most this much early
    gop_s: float = Field(default=1.0, gt=0, le=10)


class RecordSection(_Section):
    mode: Literal["off", "events", "continuous"] = "events"
    pre_capture_s: float = Field(default=5.0, ge=0, le=300)
    post_capture_s: float = Field(default=5.0, ge=0, le=300)
    retain_days: float = Field(default=7.0, ge=0)
    events_retain_days: float = Field(default=30.0, ge=0)
    # auto: remux an H.264/H.265 stream or file, encode anything else; encode: always encode
    method: Literal["auto", "encode"] = "auto"
    encode: EncodeSection = Field(default_factory=dict, validate_default=True)  # type: ignore


def check_recordings(outputs: Any) -> None:
    """Recording indexes its segments in the event database: both go together."""
    if outputs.recordings.enabled and not outputs.database.enabled:
        raise ValueError("recordings.enabled needs database.enabled (segments and events are "
                         "indexed in the event database)")
