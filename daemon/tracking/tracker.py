"""Multi-object tracker: IoU association with constant-velocity Kalman prediction, in two
stages like ByteTrack.

Each :meth:`Tracker.update` takes one frame's detections, split into *high* ones (they passed
the label's ``min_score``) and *low* ones (above the model's floor only):

1. every track's box is predicted to the frame's time;
2. high detections are matched to tracks of the same class (maximum IoU, at least
   ``iou_threshold``);
3. low detections are matched to the tracks still unmatched (at least ``low_iou_threshold``):
   a dip in confidence (occlusion, blur) keeps the track alive but never starts a new one;
4. unmatched high detections start new tracks with new ids (1, 2, ... per tracker).

Tracks that are not matched keep their last state; :meth:`Tracker.expire` removes tracks not
seen for a while (the caller decides how long). The Kalman filters of all tracks live in one
:class:`KalmanBank` (row ``i`` is the ``i``-th live track), so a frame costs a few array
operations however many objects there are.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from daemon.tracking.assignment import match_by_iou
from daemon.tracking.geometry import iou_matrix
from daemon.tracking.kalman import KalmanBank


@dataclass
class Detections:
    """One frame's detections.

    Attributes:
        boxes: ``(N, 4)`` float ``[x0, y0, x1, y1]`` pixels.
        scores: ``(N,)`` float.
        classes: ``(N,)`` int class ids.
        high: ``(N,)`` bool: may start a track (otherwise it may only extend one).
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    high: np.ndarray

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, bool))

    def __len__(self) -> int:
        return int(self.scores.shape[0])


@dataclass
class Track:
    """One tracked object. ``box`` is the last *measured* box (not the filtered one); its
    filter is a row of the tracker's :class:`KalmanBank`."""

    track_id: int
    class_id: int
    box: np.ndarray
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1

    def observe(self, box: np.ndarray, score: float, t: float) -> None:
        self.box = np.asarray(box, np.float64).copy()
        self.score = float(score)
        self.last_seen = t
        self.hits += 1


@dataclass
class TrackerUpdate:
    """What one :meth:`Tracker.update` did: ``matched`` and ``created`` pair a track with the
    index of its detection; ``missed`` are the tracks that got none."""

    matched: list[tuple[Track, int]]
    created: list[tuple[Track, int]]
    missed: list[Track]


class Tracker:
    """The tracks of one camera."""

    def __init__(self, iou_threshold: float = 0.3, low_iou_threshold: float = 0.5) -> None:
        self.iou_threshold = iou_threshold
        self.low_iou_threshold = low_iou_threshold
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)
        self._rows: list[Track] = []       # row i of the bank is self._rows[i]
        self._bank = KalmanBank()
        self._stepped = np.zeros(0)        # (N,) time each filter was last advanced to

    def update(self, detections: Detections, t: float) -> TrackerUpdate:
        """Associate one frame's detections (taken at time ``t``, seconds) with the tracks."""
        tracks = list(self._rows)
        predicted = self._predict(t)
        high = np.flatnonzero(detections.high)
        low = np.flatnonzero(~detections.high)
        everyone = np.arange(len(tracks))
        classes = np.array([tr.class_id for tr in tracks], np.int64)
        pairs = self._match(classes, predicted, detections, everyone, high, self.iou_threshold)
        rest = np.setdiff1d(everyone, [ti for ti, _ in pairs])
        pairs += self._match(classes, predicted, detections, rest, low, self.low_iou_threshold)
        if pairs:
            rows, dets = (np.array(v, np.int64) for v in zip(*pairs, strict=True))
            self._bank.update(rows, detections.boxes[dets])
        matched = []
        for ti, di in pairs:
            tracks[ti].observe(detections.boxes[di], float(detections.scores[di]), t)
            matched.append((tracks[ti], di))
        used = {di for _, di in pairs}
        fresh = [int(di) for di in high if int(di) not in used]
        created = [(self._create(detections, di, t), di) for di in fresh]
        if fresh:
            self._bank.add(detections.boxes[fresh])
            self._stepped = np.concatenate([self._stepped, np.full(len(fresh), t)])
        matched_ids = {tracks[ti].track_id for ti, _ in pairs}
        missed = [tr for tr in tracks if tr.track_id not in matched_ids]
        return TrackerUpdate(matched, created, missed)

    def _predict(self, t: float) -> np.ndarray:
        """``(N, 4)`` every track's box predicted for time ``t`` (a filter is never stepped
        back: one already at or past ``t`` stays where it is)."""
        dt = np.maximum(t - self._stepped, 0.0)
        if dt.any():
            self._bank.predict(dt)
            self._stepped = np.maximum(self._stepped, t)
        return self._bank.boxes()

    @staticmethod
    def _match(classes: np.ndarray, predicted: np.ndarray, dets: Detections,
               track_idx: np.ndarray, det_idx: np.ndarray,
               threshold: float) -> list[tuple[int, int]]:
        """Matches ``(track index, detection index)`` between the given subsets: same class,
        IoU of the predicted box at least ``threshold``."""
        if track_idx.size == 0 or det_idx.size == 0:
            return []
        ious = iou_matrix(predicted[track_idx], dets.boxes[det_idx])
        same = classes[track_idx][:, None] == np.asarray(dets.classes)[det_idx][None, :]
        ious = np.where(same, ious, 0.0)
        return [(int(track_idx[r]), int(det_idx[c])) for r, c in match_by_iou(ious, threshold)]

    def _create(self, dets: Detections, index: int, t: float) -> Track:
        track = Track(next(self._ids), int(dets.classes[index]),
                      np.asarray(dets.boxes[index], np.float64).copy(),
                      float(dets.scores[index]), first_seen=t, last_seen=t)
        self.tracks[track.track_id] = track
        self._rows.append(track)
        return track

    def expire(self, t: float, max_age: float) -> list[Track]:
        """Remove and return the tracks last seen ``max_age`` seconds or more before ``t``."""
        return self._remove([t - tr.last_seen >= max_age for tr in self._rows])

    def remove_all(self) -> list[Track]:
        """Remove and return every track (at shutdown)."""
        return self._remove([True] * len(self._rows))

    def _remove(self, gone_mask: list[bool]) -> list[Track]:
        gone = [tr for tr, g in zip(self._rows, gone_mask, strict=True) if g]
        if gone:
            keep = ~np.asarray(gone_mask, bool)
            self._rows = [tr for tr, k in zip(self._rows, keep, strict=True) if k]
            self._bank.keep(keep)
            self._stepped = self._stepped[keep]
            for track in gone:
                del self.tracks[track.track_id]
        return gone
