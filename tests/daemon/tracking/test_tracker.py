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


def test_classes_never_share_a_track() -> None:
    tracker = Tracker()
    tracker.update(dets((*square(100, 100), 0.9, 0, True)), 0.0)
    update = tracker.update(dets((*square(100, 100), 0.9, 1, True)), 0.1)
    assert not update.matched and [t.track_id for t, _ in update.created] == [2]
    assert [t.track_id for t in update.missed] == [1]


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
