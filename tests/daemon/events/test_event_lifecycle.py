"""Event life cycle of one camera fed with scripted detections: start / update / end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from daemon.config.events_schema import (
    CameraEventSettings,
    DetectSection,
    EventsSection,
    MotionSection,
    TrackingSection,
    ZoneSection,
)
from daemon.events.lifecycle import EventTracker
from daemon.structures.frame import Frame
from daemon.structures.messages import SCHEMA_VERSION

NAMES = ["person", "car"]
T0_WALL = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LEFT = ZoneSection(coordinates=[[0, 0], [0.5, 0], [0.5, 1], [0, 1]])


def make_tracker(zones: dict | None = None, snapshots: Path | None = None,
                 **events: object) -> EventTracker:
    settings = CameraEventSettings(DetectSection(), MotionSection(),
                                   EventsSection(**events), zones or {})
    return EventTracker("cam", settings, TrackingSection(), NAMES, "demo", snapshots)


class Feed:
    """Frames at 10 fps (event clock = media time), detections given per frame."""

    def __init__(self, tracker: EventTracker) -> None:
        self.tracker = tracker
        self.seq = 0
        self.messages: list[tuple[int, dict]] = []  # (frame, envelope)
        self.counts: list[dict[str, int]] = []
        self.snapshots: list = []

    def frame(self, *detections: tuple[float, float, float, float, float, int],
              inferred: bool = True) -> list[str]:
        t = self.seq / 10
        frame = Frame("cam", self.seq, 100 + t, T0_WALL + t,
                      np.zeros((200, 400, 3), np.uint8), t_media=t)
        if inferred:
            array = np.array(detections, np.float64).reshape(-1, 6)
            batch = self.tracker.observe(frame, t, array[:, :4], array[:, 4],
                                         array[:, 5].astype(np.int64))
        else:
            batch = self.tracker.tick(frame, t)
        self.seq += 1
        return self._record(batch)

    def close(self) -> list[str]:
        return self._record(self.tracker.close())

    def _record(self, batch) -> list[str]:  # noqa: ANN001
        for message in batch.events:
            envelope = json.loads(message.json)
            assert envelope == message.to_dict()
            self.messages.append((self.seq, envelope))
        if batch.counts is not None:
            self.counts.append(batch.counts)
        self.snapshots += batch.snapshots
        return [m.type for m in batch.events]

    def types(self) -> list[str]:
        return [m["type"] for _, m in self.messages]


def person(x: float, score: float = 0.9, y: float = 50) -> tuple:
    return (x, y, x + 40, y + 80, score, 0)


@pytest.mark.parametrize(("scores", "window", "threshold", "starts_at"), [
    ([0.99], 5, 0.7, None),                        # one confident frame alone starts nothing
    ([0.99, 0.99], 5, 0.7, None),                  # median of [.99, .99, 0, 0, 0] is 0
    ([0.99, 0.99, 0.99], 5, 0.7, 2),
    ([0.6, 0.8, 0.9, 0.9], 5, 0.7, 3),             # median 0.6 at the 3rd, 0.8 at the 4th
    ([0.65, 0.65, 0.65, 0.65, 0.65, 0.65], 5, 0.7, None),
    ([0.8, 0.8], 3, 0.7, 1),                       # a shorter window starts sooner
    ([0.9], 1, 0.7, 0),
])
def test_start_rule(scores: list[float], window: int, threshold: float,
                    starts_at: int | None) -> None:
    feed = Feed(make_tracker(score_window=window, threshold=threshold, min_score=0.5))
    started = [i for i, s in enumerate(scores) if feed.frame(person(10 + i, s)) == ["start"]]
    assert started == ([] if starts_at is None else [starts_at])


def test_full_life_with_zones_updates_and_end(tmp_path: Path) -> None:
    feed = Feed(make_tracker({"left": LEFT}, snapshots=tmp_path, end_after_s=1.0,
                             update_interval_s=0.5, update_box_iou=0.5))
    for _ in range(3):                      # frames 0-2, bottom centre x = 205: no zone
        feed.frame(person(185))
    assert feed.types() == ["start"]        # at 0.2 s
    for score in (0.97, 0.97, 0.9, 0.9):    # frames 3-6: a better score, too soon to tell
        feed.frame(person(185, score))
    assert feed.types() == ["start"]
    feed.frame(person(185))                 # frame 7, 0.5 s after the start: the update
    assert feed.types() == ["start", "update"]
    feed.frame(person(175))                 # frame 8: x = 195 < 200, an update at once
    feed.frame(person(175), inferred=False)
    assert feed.types() == ["start", "update", "update"]
    for _ in range(5):                      # gone: empty inferred frames up to 1.4 s
        feed.frame()
    assert feed.types()[-1] == "update"     # 0.6 s after the last detection: not yet
    for _ in range(5):                      # skipped frames up to 1.9 s
        feed.frame(inferred=False)
    assert feed.types() == ["start", "update", "update", "end"]
    start, score, zone, end = (m for _, m in feed.messages)
    assert all(m["v"] == SCHEMA_VERSION for m in (start, score, zone, end))
    assert start["before"] is None
    assert score["before"] == start["after"] and zone["before"] == score["after"]
    assert end["before"] == zone["after"]
    assert len({m["after"]["id"] for m in (start, score, zone, end)}) == 1
    assert start["after"]["id"] == "cam-20260101T000000.000Z-1"
    assert score["after"]["top_score"] == 0.97 and score["after"]["current_zones"] == []
    assert zone["after"]["current_zones"] == ["left"] == zone["after"]["entered_zones"]
    after = end["after"]
    assert after["end_time"] == after["last_time"] == "2026-01-01T00:00:00.800Z"
    assert after["start_time"] == "2026-01-01T00:00:00.000Z"
    assert after["current_zones"] == [] and after["entered_zones"] == ["left"]
    assert after["best"] == {"time": "2026-01-01T00:00:00.300Z", "frame": 3, "score": 0.97,
                             "box": [185.0, 50.0, 225.0, 130.0]}
    assert after["box"] == [175.0, 50.0, 215.0, 130.0] and after["frame"] == 8
    assert after["snapshot"] == str(tmp_path / "cam" / "cam-20260101T000000.000Z-1.jpg")
    assert after["label"] == "person" and after["track_id"] == 1
    assert after["frame_size"] == [400, 200] and after["model"] == "demo"
    (job,) = feed.snapshots
    assert str(job.path) == after["snapshot"] and job.best.frame.seq == 3
    assert feed.counts == [{"person": 0, "car": 0}, {"person": 1, "car": 0},
                           {"person": 0, "car": 0}]


def test_moving_box_updates_are_rate_limited() -> None:
    feed = Feed(make_tracker(update_interval_s=1.0, update_box_iou=0.5))
    for i in range(40):                     # 3 px per frame, 4 s
        feed.frame(person(10 + 3 * i))
    frames = [f for f, m in feed.messages if m["type"] == "update"]
    assert feed.types()[0] == "start" and len(frames) >= 2
    assert all(b - a >= 10 for a, b in zip(frames, frames[1:], strict=False))  # >= 1 s apart


def test_low_scores_keep_an_event_alive_but_never_start_one() -> None:
    feed = Feed(make_tracker(min_score=0.6, end_after_s=0.5))
    for _ in range(10):
        feed.frame(person(100, 0.55))       # only low detections: nothing tracked
    assert feed.types() == [] and not feed.tracker.active
    for _ in range(3):
        feed.frame(person(100, 0.9))
    for _ in range(10):                     # 1 s of low detections: still the same object
        feed.frame(person(100, 0.55))
    assert feed.types() == ["start"]
    for _ in range(6):
        feed.frame()
    assert feed.types() == ["start", "end"]


def test_required_zones_delay_the_start_until_entered() -> None:
    feed = Feed(make_tracker({"left": LEFT}, required_zones=["left"]))
    for _ in range(6):
        feed.frame(person(185))             # confident, but its bottom centre x = 205
    assert feed.types() == [] and feed.tracker.active
    feed.frame(person(175))                 # x = 195: in the zone
    assert feed.types() == ["start"]
    assert feed.messages[0][1]["after"]["track_id"] == 1
    assert feed.messages[0][1]["after"]["entered_zones"] == ["left"]


def test_zone_labels_and_label_filters() -> None:
    zones = {"left": ZoneSection(coordinates=LEFT.coordinates, labels=["car"])}
    feed = Feed(make_tracker(zones, labels=["person"]))
    for _ in range(3):
        feed.frame(person(150), (150, 0, 190, 40, 0.9, 1))  # the car is not tracked
    (start,) = [m for _, m in feed.messages]
    assert start["after"]["label"] == "person"
    assert start["after"]["current_zones"] == []  # the zone counts cars only


def test_two_objects_get_their_own_events_and_ids() -> None:
    feed = Feed(make_tracker(end_after_s=0.3))
    for i in range(4):
        feed.frame(person(10 + i), person(300 - i, y=100))
    for _ in range(5):
        feed.frame()
    ends = [m["after"] for _, m in feed.messages if m["type"] == "end"]
    assert sorted(e["track_id"] for e in ends) == [1, 2]
    assert len({e["id"] for e in ends}) == 2
    assert feed.counts[1] == {"person": 2, "car": 0}


def test_close_ends_open_events_and_forgets_unstarted_tracks() -> None:
    feed = Feed(make_tracker())
    for i in range(3):
        feed.frame(person(10 + i), person(300, 0.9) if i == 2 else person(300, 0.3))
    assert feed.types() == ["start"]
    assert feed.close() == ["end"] and not feed.tracker.active
    assert feed.counts[-1] == {"person": 0, "car": 0}


def test_a_label_flip_is_one_event_whose_label_follows_the_votes(tmp_path: Path) -> None:
    """Scripted flips: person x3, then car. One event throughout; the update that changes the
    winner says so (before/after label); zones (cars only here), counts and the snapshot
    follow the winning label."""
    zones = {"left": ZoneSection(coordinates=LEFT.coordinates, labels=["car"])}
    feed = Feed(make_tracker(zones, snapshots=tmp_path, end_after_s=0.3,
                             update_interval_s=100))
    car = lambda x: (*person(x)[:5], 1)  # noqa: E731 - the same box, labelled car
    for i in range(3):
        feed.frame(person(10 + i))
    assert feed.types() == ["start"] and feed.counts[-1] == {"person": 1, "car": 0}
    assert feed.messages[0][1]["after"]["current_zones"] == []
    flipped_at = [i for i in range(6) if feed.frame(car(13 + i)) == ["update"]]
    assert flipped_at == [3]  # car's votes 4 x 0.9 > person's 3 x 0.9; nothing before
    update = feed.messages[-1][1]
    assert (update["before"]["label"], update["after"]["label"]) == ("person", "car")
    assert update["after"]["current_zones"] == ["left"]
    assert feed.counts[-1] == {"person": 0, "car": 1}
    for _ in range(5):
        feed.frame()
    assert feed.types() == ["start", "update", "end"]
    assert len({m["after"]["id"] for _, m in feed.messages}) == 1
    assert feed.messages[-1][1]["after"]["label"] == "car"
    assert [job.label for job in feed.snapshots] == ["car"]


def test_alternating_labels_never_start_parallel_events() -> None:
    feed = Feed(make_tracker(end_after_s=0.3))
    for i in range(20):
        label = i % 2 if i % 5 else 1  # person, car, person, car... with extra cars
        feed.frame((*person(10 + 2 * i)[:5], label))
    for _ in range(5):
        feed.frame()
    starts = [m for _, m in feed.messages if m["type"] == "start"]
    assert len(starts) == 1 and max(c["person"] + c["car"] for c in feed.counts) == 1
    assert feed.messages[-1][1]["type"] == "end"
