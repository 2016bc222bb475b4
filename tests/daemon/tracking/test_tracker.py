"""The IoU + Kalman tracker: stable ids, classes, low-score detections, expiry."""

from __future__ import annotations

import numpy as np

from daemon.tracking.kalman import KalmanBank
from daemon.tracking.tracker import Detections, Tracker


def dets(*rows: tuple[float, float, float, float, float, int, bool]) -> Detections:
    """Rows ``(x0, y0, x1, y1, score, class, high)``."""
    if not rows:
        return Detections.empty()
    array = np.array([r[:5] for r in rows], np.float64)
    return Detections(array[:, :4], array[:, 4], np.array([r[5] for r in rows], np.int64),
                      np.array([r[6] for r in rows], bool))


def square(cx: float, cy: float, size: float = 40) -> tuple[float, float, float, float]:
    return (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


def test_two_crossing_objects_keep_their_ids() -> None:
    """Two boxes moving towards each other, overlapping half-way: the velocity model keeps the
    ids on the right objects."""
    tracker = Tracker(iou_threshold=0.3)
    ids_left, ids_right = set(), set()
    for step in range(12):
        t = step * 0.1
        left, right = square(40 + 20 * step, 100), square(280 - 20 * step, 110)
        update = tracker.update(dets((*left, 0.9, 0, True), (*right, 0.9, 0, True)), t)
        by_det = {index: track.track_id for track, index in update.matched + update.created}
        ids_left.add(by_det[0])
        ids_right.add(by_det[1])
    assert ids_left == {1} and ids_right == {2}


def test_a_label_flip_continues_the_same_track() -> None:
    """The model calls one object class 0, then class 1: still one track, whose label is the
    score-weighted vote winner (a tie keeps the current label)."""
    tracker = Tracker()
    tracker.update(dets((*square(100, 100), 0.9, 0, True)), 0.0)
    update = tracker.update(dets((*square(102, 100), 0.9, 1, True)), 0.1)
    assert [(t.track_id, i) for t, i in update.matched] == [(1, 0)] and not update.created
    track = tracker.tracks[1]
    assert track.votes == {0: 0.9, 1: 0.9} and track.class_id == 0  # tie: kept
    tracker.update(dets((*square(104, 100), 0.6, 1, True)), 0.2)
    assert track.class_id == 1 and track.votes[1] == 1.5
    for step in range(3, 6):  # low detections vote too, with their (small) scores
        tracker.update(dets((*square(100 + 2 * step, 100), 0.4, 0, False)), step / 10)
    assert len(tracker.tracks) == 1 and track.class_id == 0
    assert round(track.votes[0], 6) == 2.1


def test_predicted_boxes_move_with_the_velocity_without_stepping_the_filters() -> None:
    tracker = Tracker()
    for step in range(10):
        tracker.update(dets((*square(100 + 10 * step, 100), 0.9, 0, True)), step * 0.1)
    (track, box), = tracker.predicted_boxes(1.4)  # 0.5 s after the last frame: +50 px
    assert track.track_id == 1
    assert abs((box[0] + box[2]) / 2 - 240) < 3 and abs((box[1] + box[3]) / 2 - 100) < 1
    (_, again), = tracker.predicted_boxes(1.4)
    assert np.array_equal(box, again)  # nothing advanced
    (_, now), = tracker.predicted_boxes(0.9)
    assert abs((now[0] + now[2]) / 2 - 190) < 2


def test_low_detections_extend_tracks_but_never_start_them() -> None:
    tracker = Tracker(low_iou_threshold=0.5)
    update = tracker.update(dets((*square(100, 100), 0.3, 0, False)), 0.0)
    assert not update.created and not tracker.tracks
    tracker.update(dets((*square(100, 100), 0.9, 0, True)), 0.1)
    update = tracker.update(dets((*square(104, 100), 0.3, 0, False),
                                 (*square(250, 100), 0.3, 0, False)), 0.2)
    assert [(t.track_id, i) for t, i in update.matched] == [(1, 0)]
    assert not update.created and tracker.tracks[1].score == 0.3


def test_high_detections_are_matched_before_low_ones() -> None:
    tracker = Tracker(iou_threshold=0.3, low_iou_threshold=0.3)
    tracker.update(dets((*square(100, 100), 0.9, 0, True)), 0.0)
    # a low detection fits the track better, but the high one takes it first
    update = tracker.update(dets((*square(100, 100), 0.4, 0, False),
                                 (*square(110, 100), 0.9, 0, True)), 0.1)
    assert [(t.track_id, i) for t, i in update.matched] == [(1, 1)]


def test_prediction_bridges_a_missed_frame() -> None:
    tracker = Tracker(iou_threshold=0.3)
    for step in range(5):  # 150 px/s to the right
        tracker.update(dets((*square(50 + 15 * step, 100), 0.9, 0, True)), step * 0.1)
    assert tracker.update(Detections.empty(), 0.5).missed[0].track_id == 1
    # at 0.6 s the 40 px object is 30 px further: IoU with its last box is 0.14 only
    update = tracker.update(dets((*square(50 + 15 * 6, 100), 0.9, 0, True)), 0.6)
    assert [t.track_id for t, _ in update.matched] == [1] and not update.created


def test_expire_removes_tracks_not_seen_for_long_enough() -> None:
    tracker = Tracker()
    tracker.update(dets((*square(100, 100), 0.9, 0, True)), 0.0)
    tracker.update(dets((*square(200, 100), 0.9, 0, True)), 1.0)
    assert [t.track_id for t in tracker.expire(2.5, max_age=2.0)] == [1]  # 2.5 s ago
    assert not tracker.expire(3.0 - 1e-9, max_age=2.0)
    assert list(tracker.tracks) == [2]
    assert [t.track_id for t in tracker.remove_all()] == [2] and not tracker.tracks


def test_kalman_learns_constant_velocity() -> None:
    kf = KalmanBank()
    kf.add(np.array([square(0, 0)]))
    for step in range(1, 10):
        kf.predict(np.array([0.1]))
        kf.update(np.array([0]), np.array([square(10 * step, 5 * step)]))
    assert np.allclose(kf.vel[0, :2], [100, 50], atol=5)
    kf.predict(np.array([0.5]))
    assert np.allclose(kf.boxes()[0], square(90 + 50, 45 + 25), atol=3)


def test_a_second_report_of_a_tracked_object_starts_no_track() -> None:
    """The model reports one object twice under two labels (boxes overlapping by 0.4 IoU):
    with new_track_iou 0.3 the duplicate neither starts a track nor steals the match."""
    tracker = Tracker(new_track_iou=0.3)
    first = tracker.update(dets((*square(100, 100), 0.9, 0, True),
                                (*square(112, 100), 0.8, 1, True)), 0.0)
    assert [t.track_id for t, _ in first.created] == [1] and first.created[0][1] == 0
    update = tracker.update(dets((*square(101, 100), 0.9, 0, True),
                                 (*square(113, 100), 0.95, 2, True),
                                 (*square(250, 100), 0.9, 1, True)), 0.1)
    assert [(t.track_id, i) for t, i in update.matched] == [(1, 0)]
    assert [(t.track_id, i) for t, i in update.created] == [(2, 2)]  # a separate object
    assert Tracker().update(dets((*square(100, 100), 0.9, 0, True),
                                 (*square(112, 100), 0.8, 1, True)), 0.0).created[1][0] \
        .track_id == 2  # 0 (off): both start tracks


def test_a_run_away_prediction_keeps_its_object() -> None:
    """An object moving right fast stops dead (a bounce) and is missed twice: its predicted box
    runs off, the last measured box still catches the next detection."""
    tracker = Tracker()
    for step in range(10):
        tracker.update(dets((*square(100 + 15 * step, 100), 0.9, 0, True)), step * 0.1)
    tracker.update(dets(), 1.0)
    tracker.update(dets(), 1.1)
    (_, predicted), = tracker.predicted_boxes(1.2)
    assert predicted[0] - square(235, 100)[0] > 35  # run off: IoU with the object below 0.3
    update = tracker.update(dets((*square(236, 100), 0.9, 0, True)), 1.2)
    assert [t.track_id for t, _ in update.matched] == [1] and not update.created


def test_established_tracks_are_served_before_young_ones() -> None:
    """A young track overlapping an established one must not take its detection."""
    tracker = Tracker(new_track_iou=0.0)
    for step in range(3):
        tracker.update(dets((*square(100, 100), 0.9, 0, True)), step * 0.1)
    tracker.update(dets((*square(100, 100), 0.9, 0, True), (*square(110, 100), 0.8, 1, True)),
                   0.3)  # a duplicate starts track 2 right beside it
    update = tracker.update(dets((*square(108, 100), 0.9, 0, True)), 0.4)
    assert [t.track_id for t, _ in update.matched] == [1]
