"""Config sections of tracking, events, zones and motion gating (``detect``, ``motion``,
``events``, ``tracking``, ``cameras[].zones``).

``detect``, ``motion`` and ``events`` exist at the top level (defaults of every camera) and under
each camera; a camera's section overrides the top-level one key by key (:func:`overlay`), and
``events.filters`` label by label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from daemon.structures.polygon import validate_polygon

NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ZoneName = Annotated[str, Field(pattern=NAME_PATTERN)]

M = TypeVar("M", bound=BaseModel)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DetectSection(_Section):
    """When the model runs on a camera's frames."""

    fps: float = Field(default=5.0, ge=0.0)
    motion_timeout_s: float = Field(default=10.0, gt=0.0)


class MotionSection(_Section):
    """The frame-difference motion detector that decides whether the model runs."""

    enabled: bool = True
    width: int = Field(default=160, ge=16, le=1920)
    blur_size: int = Field(default=5, ge=1, le=51)
    threshold: int = Field(default=20, ge=1, le=255)
    min_area: float = Field(default=0.002, gt=0.0, le=1.0)
    alpha: float = Field(default=0.1, gt=0.0, le=1.0)
    reset_area: float = Field(default=0.8, gt=0.0, le=1.0)

    @field_validator("blur_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"the blur kernel size must be odd, got {value}")
        return value


class LabelFilter(_Section):
    """Per-label overrides of the object filter (unset keys come from ``events``)."""

    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    min_area: float = Field(default=0.0, ge=0.0)
    max_area: float = Field(default=1.0, gt=0.0)


class EventsSection(_Section):
    """Which detections are tracked and when a track's event starts, updates and ends."""

    labels: list[str] = Field(default_factory=list)
    min_score: float = Field(default=0.5, ge=0.0, le=1.0)
    threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    min_area: float = Field(default=0.0, ge=0.0)
    max_area: float = Field(default=1.0, gt=0.0)
    filters: dict[str, LabelFilter] = Field(default_factory=dict)
    required_zones: list[ZoneName] = Field(default_factory=list)
    score_window: int = Field(default=5, ge=1, le=100)
    end_after_s: float = Field(default=5.0, gt=0.0)
    update_interval_s: float = Field(default=2.0, ge=0.0)
    update_score_delta: float = Field(default=0.05, ge=0.0, le=1.0)
    update_box_iou: float = Field(default=0.5, ge=0.0, le=1.0)

    def filter_for(self, label: str) -> LabelFilter:
        """The effective filter of ``label``: these defaults, overridden by ``filters[label]``."""
        base = LabelFilter(min_score=self.min_score, threshold=self.threshold,
                           min_area=self.min_area, max_area=self.max_area)
        own = self.filters.get(label)
        return base if own is None else overlay(base, own)


class TrackingSection(_Section):
    """The IoU tracker (ByteTrack-style two-stage association)."""

    iou_threshold: float = Field(default=0.3, gt=0.0, le=1.0)
    low_iou_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    class_agnostic_iou: float = Field(default=0.5, ge=0.0, le=1.0)
    new_track_iou: float = Field(default=0.3, ge=0.0, le=1.0)


class ZoneSection(_Section):
    """A named polygon of a camera's image."""

    coordinates: list[tuple[float, float]]
    labels: list[str] = Field(default_factory=list)

    @field_validator("coordinates", mode="before")
    @classmethod
    def _polygon(cls, value: Any) -> list[tuple[float, float]]:
        return validate_polygon(value)  # PolygonError is a ValueError: reported with the key


@dataclass(frozen=True)
class CameraEventSettings:
    """A camera's effective ``detect``, ``motion`` and ``events`` (the top-level sections
    overlaid with the camera's own) and its zones."""

    detect: DetectSection
    motion: MotionSection
    events: EventsSection
    zones: dict[str, ZoneSection]


def overlay(base: M, override: M) -> M:
    """``base`` with every key explicitly set in ``override`` replaced; nested sections and
    dicts of sections are overlaid recursively, so unset keys keep ``base``'s values."""
    update: dict[str, Any] = {}
    for name in override.model_fields_set:
        new, old = getattr(override, name), getattr(base, name)
        if isinstance(new, BaseModel) and isinstance(old, BaseModel):
            new = overlay(old, new)
        elif isinstance(new, dict) and isinstance(old, dict):
            merged = dict(old)
            for key, value in new.items():
                prior = merged.get(key)
                both = isinstance(prior, BaseModel) and isinstance(value, BaseModel)
                merged[key] = overlay(prior, value) if both else value
            new = merged
        update[name] = new
    return base.model_copy(update=update)
