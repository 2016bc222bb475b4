"""Event life cycle of one camera: detections -> tracks -> start / update / end messages.

- ``start``: once the median of a track's recent scores (:meth:`TrackedObject.median_score`)
  reaches its label's ``threshold`` and, with ``required_zones``, once it has entered one of them;
- ``update``: when its zones or its label change (at once; the label is the track's label
  vote winner, so ``before.label`` / ``after.label`` show a flip), or, at most every
  ``update_interval_s``, when its top score rose by ``update_score_delta`` or its box moved
  (IoU with the last published box below ``update_box_iou``);
- ``end``: once it has not been detected for ``end_after_s`` (or at shutdown); the best frame's
  snapshot is requested then, once.

Times are the camera's event clock (seconds); messages carry wall-clock times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from daemon.config.events_schema import CameraEventSettings, TrackingSection
from daemon.events.filters import ObjectFilter
from daemon.events.objects import EventContext, TrackedObject
from daemon.structures.frame import Frame
from daemon.structures.messages import EventMessage, EventType
from daemon.structures.results import TrackedBox
from daemon.structures.snapshot import SnapshotJob
from daemon.tracking.geometry import iou
from daemon.tracking.tracker import Tracker
from daemon.zones.zoneset import ZoneSet

CLOCK_EPS = 1e-6  # rounding of frame times computed as n / fps


@dataclass
class EventBatch:
    """What one frame changed: messages, per-label counts (``None``: unchanged), snapshots."""

    events: list[EventMessage] = field(default_factory=list)
    counts: dict[str, int] | None = None
    snapshots: list[SnapshotJob] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.counts is not None or self.snapshots)


class EventTracker:
    """Tracks and events of one camera. The frame size is learned from the first frame."""

    def __init__(self, camera: str, settings: CameraEventSettings, tracking: TrackingSection,
                 class_names: Sequence[str], model_name: str,
                 snapshot_dir: Path | None = None) -> None:
        self.camera = camera
        self.events = settings.events
        self.zone_config = settings.zones
        self.tracking = tracking
        self.class_names = list(class_names)
        self.model_name = model_name
        self.snapshot_dir = snapshot_dir
        self.tracker = Tracker(tracking.iou_threshold, tracking.low_iou_threshold,
                               tracking.new_track_iou)
        self.objects: dict[int, TrackedObject] = {}
        wanted = self.events.labels or self.class_names
        self._counts_sent: dict[str, int] | None = None
        self._count_labels = list(dict.fromkeys(wanted))
        self.ctx: EventContext | None = None
        self.filter: ObjectFilter | None = None
        self.zones: ZoneSet | None = None
        self._last_update: float | None = None  # event clock of the latest inference

    @property
    def active(self) -> bool:
        """Whether any object is being tracked (started or not)."""
        return bool(self.tracker.tracks)

    def _setup(self, frame: Frame) -> EventContext:
        height, width = frame.display_image.shape[:2]
        if self.ctx is None or self.ctx.frame_size != (width, height):
            self.ctx = EventContext(self.camera, self.model_name, (width, height),
                                    self.snapshot_dir)
            self.filter = ObjectFilter.build(self.events, self.class_names, width, height,
                                             self.tracking.class_agnostic_iou)
            self.zones = ZoneSet(self.zone_config, width, height, self.camera)
        return self.ctx

    def label(self, class_id: int) -> str:
        return self.class_names[class_id] if 0 <= class_id < len(self.class_names) \
            else f"class_{class_id}"

    # -- per frame -------------------------------------------------------------------------
    def observe(self, frame: Frame, t: float, boxes: np.ndarray, scores: np.ndarray,
                classes: np.ndarray) -> EventBatch:
        """An inferred frame: ``boxes`` ``(N, 4)`` in display-image pixels."""
        ctx = self._setup(frame)
        assert self.filter is not None and self.zones is not None
        batch = EventBatch()
        self._expire(t, ctx, batch)
        detections = self.filter.select(boxes, scores, classes)
        update = self.tracker.update(detections, t)
        self._last_update = t
        seen = []
        for track, index in [*update.matched, *update.created]:
            obj = self.objects.get(track.track_id)
            if obj is None:
                obj = TrackedObject(track.track_id, self.label(track.class_id), frame.t_wall,
                                    self.events.score_window)
                self.objects[track.track_id] = obj
            obj.label = self.label(track.class_id)  # the vote winner: zones, counts follow it
            box = detections.boxes[index]
            obj.observe(frame, t, box, float(detections.scores[index]),
                        self.zones.zones_of(box, obj.label))
            seen.append((obj, track.class_id))
        for obj, class_id in sorted(seen, key=lambda item: item[0].track_id):
            self._start_or_update(obj, float(self.filter.threshold[class_id]), t, ctx, batch)
        batch.counts = self._counts_if_changed()
        return batch

    def tick(self, frame: Frame, t: float) -> EventBatch:
        """A frame the model did not see: only ends events whose objects are gone."""
        ctx = self._setup(frame)
        batch = EventBatch()
        self._expire(t, ctx, batch)
        batch.counts = self._counts_if_changed()
        return batch

    def tracked_boxes(self, frame: Frame, t: float) -> list[TrackedBox]:
        """Tracks matched at the latest inference, boxes predicted for ``t`` and scaled from
        the display size the tracker knows to ``frame``'s display image."""
        if self.ctx is None or self._last_update is None:
            return []
        height, width = frame.display_image.shape[:2]
        sx, sy = width / self.ctx.frame_size[0], height / self.ctx.frame_size[1]
        return [TrackedBox(track.track_id, track.class_id, track.score,
                           (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
                for track, box in self.tracker.predicted_boxes(t)
                if track.last_seen >= self._last_update]

    def close(self) -> EventBatch:
        """End every event (shutdown)."""
        batch = EventBatch()
        if self.ctx is not None:
            for track in self.tracker.remove_all():
                self._end(track.track_id, self.ctx, batch)
        batch.counts = self._counts_if_changed()
        return batch

    # -- life cycle --------------------------------------------------------------------------
    def _start_or_update(self, obj: TrackedObject, threshold: float, t: float,
                         ctx: EventContext, batch: EventBatch) -> None:
        if not obj.started:
            required = self.events.required_zones
            if obj.median_score() >= threshold and (
                    not required or any(z in obj.entered_zones for z in required)):
                obj.start(self.camera)
                self._publish(obj, "start", t, ctx, batch)
            return
        if self._material_change(obj, t):
            self._publish(obj, "update", t, ctx, batch)

    def _material_change(self, obj: TrackedObject, t: float) -> bool:
        last = obj.published
        assert last is not None
        if obj.current_zones != last["current_zones"] or obj.label != last["label"]:
            return True
        if t - obj.published_t < self.events.update_interval_s - CLOCK_EPS:
            return False
        if obj.top_score - last["top_score"] >= self.events.update_score_delta:
            return True
        return iou(obj.box, last["box"]) < self.events.update_box_iou

    def _publish(self, obj: TrackedObject, kind: EventType, t: float, ctx: EventContext,
                 batch: EventBatch, ended: bool = False) -> None:
        after = obj.state(ctx, ended=ended)
        batch.events.append(EventMessage.make(kind, obj.published, after))
        obj.published, obj.published_t = after, t

    def _expire(self, t: float, ctx: EventContext, batch: EventBatch) -> None:
        for track in sorted(self.tracker.expire(t, self.events.end_after_s - CLOCK_EPS),
                            key=lambda tr: tr.track_id):
            self._end(track.track_id, ctx, batch)

    def _end(self, track_id: int, ctx: EventContext, batch: EventBatch) -> None:
        obj = self.objects.pop(track_id, None)
        if obj is None or not obj.started:
            return
        self._publish(obj, "end", obj.last_t, ctx, batch, ended=True)
        path = obj.snapshot_path(ctx)
        if path is not None and obj.best is not None and obj.event_id is not None:
            batch.snapshots.append(SnapshotJob(path, obj.best, obj.label, obj.event_id))

    # -- counts ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Objects with a started, not yet ended event, per label (tracked labels all listed)."""
        out = dict.fromkeys(self._count_labels, 0)
        for obj in self.objects.values():
            if obj.started:
                out[obj.label] = out.get(obj.label, 0) + 1
        return out

    def _counts_if_changed(self) -> dict[str, int] | None:
        now = self.counts()
        if now == self._counts_sent:
            return None
        self._counts_sent = now
        return now
