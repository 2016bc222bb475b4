"""Object filters of one camera: which detections the tracker sees, and how.

Per label (``events`` overlaid with ``events.filters.<label>``): whether it is tracked at all
(``labels``), ``min_score`` (a detection below it is *low*: it may keep a track alive but never
start one), the start ``threshold``, and the box area range. Areas up to 1 are fractions of the
image, larger values are pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from daemon.config.events_schema import EventsSection
from daemon.tracking.geometry import box_areas, suppress_duplicates
from daemon.tracking.tracker import Detections


def area_in_pixels(value: float, image_area: float) -> float:
    """An area setting in pixels: values up to 1 are fractions of ``image_area``."""
    return value * image_area if value <= 1.0 else value


@dataclass
class ObjectFilter:
    """Per-class settings as arrays indexed by class id.

    Attributes:
        tracked: ``(C,)`` bool, the label is tracked.
        min_score, threshold: ``(C,)`` float.
        min_area, max_area: ``(C,)`` float, pixels of the display image.
        duplicate_iou: class-agnostic suppression threshold (0: off).
    """

    tracked: np.ndarray
    min_score: np.ndarray
    threshold: np.ndarray
    min_area: np.ndarray
    max_area: np.ndarray
    duplicate_iou: float = 0.0

    @classmethod
    def build(cls, events: EventsSection, class_names: Sequence[str], width: int, height: int,
              duplicate_iou: float = 0.0) -> ObjectFilter:
        """The filter of a camera whose display image is ``width x height``."""
        wanted = set(events.labels)
        image_area = float(width * height)
        filters = [events.filter_for(name) for name in class_names]
        return cls(
            tracked=np.array([not wanted or n in wanted for n in class_names], bool),
            min_score=np.array([f.min_score for f in filters], np.float64),
            threshold=np.array([f.threshold for f in filters], np.float64),
            min_area=np.array([area_in_pixels(f.min_area, image_area) for f in filters]),
            max_area=np.array([area_in_pixels(f.max_area, image_area) for f in filters]),
            duplicate_iou=duplicate_iou)

    def select(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> Detections:
        """The detections to track, ``high`` where the score reaches the label's ``min_score``.

        Args:
            boxes: ``(N, 4)`` display-image pixels; scores ``(N,)``; classes ``(N,)`` int.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        classes = np.asarray(classes, np.int64).reshape(-1)
        known = (classes >= 0) & (classes < self.tracked.shape[0])
        cls = np.where(known, classes, 0)
        area = box_areas(boxes)
        keep = known & self.tracked[cls] & (area >= self.min_area[cls]) \
            & (area <= self.max_area[cls])
        index = np.flatnonzero(keep)
        order = suppress_duplicates(boxes[index], scores[index], self.duplicate_iou)
        index = np.sort(index[order])
        return Detections(boxes=boxes[index], scores=scores[index], classes=classes[index],
                          high=scores[index] >= self.min_score[classes[index]])
