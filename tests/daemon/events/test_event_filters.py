"""Object filters (labels, scores, areas in pixels or fractions, duplicates): table-driven."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.config.events_schema import EventsSection, LabelFilter
from daemon.events.filters import ObjectFilter

NAMES = ["person", "car", "dog"]
W, H = 400, 200  # image area 80 000 px

# Detections of every case: (x0, y0, x1, y1, score, class)
DETECTIONS = [
    (0, 0, 10, 10, 0.90, 0),       # person, 100 px
    (100, 0, 200, 100, 0.55, 0),   # person, 10 000 px
    (0, 100, 400, 200, 0.80, 1),   # car, 40 000 px (half the image)
    (300, 0, 320, 20, 0.45, 1),    # car, 400 px, low score
    (200, 50, 240, 90, 0.70, 2),   # dog, 1 600 px
]


def run(events: EventsSection, duplicate_iou: float = 0.0) -> list[tuple[int, bool]]:
    """``(detection index, high)`` of the detections kept."""
    flt = ObjectFilter.build(events, NAMES, W, H, duplicate_iou)
    array = np.array(DETECTIONS, np.float64)
    kept = flt.select(array[:, :4], array[:, 4], array[:, 5].astype(np.int64))
    index = [int(np.flatnonzero((array[:, :4] == box).all(1))[0]) for box in kept.boxes]
    return list(zip(index, kept.high.tolist(), strict=True))


CASES = [
    ("defaults: everything, high from 0.5",
     EventsSection(), [(0, True), (1, True), (2, True), (3, False), (4, True)]),
    ("labels to track",
     EventsSection(labels=["car"]), [(2, True), (3, False)]),
    ("min_score splits high and low",
     EventsSection(min_score=0.6), [(0, True), (1, False), (2, True), (3, False), (4, True)]),
    ("min_area in pixels",
     EventsSection(min_area=500), [(1, True), (2, True), (4, True)]),
    ("max_area as a fraction of the image",
     EventsSection(max_area=0.2), [(0, True), (1, True), (3, False), (4, True)]),
    ("max_area 0.1 = 8 000 px",
     EventsSection(max_area=0.1), [(0, True), (3, False), (4, True)]),
    ("area range as fractions (1% .. 25%)",
     EventsSection(min_area=0.01, max_area=0.25), [(1, True), (4, True)]),
    ("a label's own filter",
     EventsSection(filters={"person": LabelFilter(min_area=1000)}),
     [(1, True), (2, True), (3, False), (4, True)]),
    ("a label's own min_score",
     EventsSection(filters={"car": LabelFilter(min_score=0.4), "person": LabelFilter(
         min_score=0.95)}), [(0, False), (1, False), (2, True), (3, True), (4, True)]),
    ("labels and filters together",
     EventsSection(labels=["person", "dog"], filters={"dog": LabelFilter(max_area=1000)}),
     [(0, True), (1, True)]),
]


@pytest.mark.parametrize(("name", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_filters(name: str, events: EventsSection, expected: list) -> None:
    assert run(events) == expected


def test_the_same_object_under_two_labels_is_tracked_once() -> None:
    flt = ObjectFilter.build(EventsSection(), NAMES, W, H, duplicate_iou=0.7)
    boxes = np.array([[10, 10, 60, 60], [11, 10, 60, 62], [200, 10, 260, 60]], np.float64)
    kept = flt.select(boxes, np.array([0.6, 0.9, 0.8]), np.array([0, 2, 0]))
    assert kept.classes.tolist() == [2, 0] and kept.scores.tolist() == [0.9, 0.8]


def test_unknown_class_ids_are_ignored() -> None:
    flt = ObjectFilter.build(EventsSection(), NAMES, W, H)
    kept = flt.select(np.array([[0, 0, 5, 5], [0, 0, 9, 9]]), np.array([0.9, 0.9]),
                      np.array([7, 1]))
    assert kept.classes.tolist() == [1]
