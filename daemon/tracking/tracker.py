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
seen for a while (the caller decides how long).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from daemon.tracking.assignment import match_by_iou
from daemon.tracking.geometry import iou_matrix
from daemon.tracking.kalman import BoxKalman


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
    """One tracked object. ``box`` is the last *measured* box (not the filtered one)."""

    track_id: int
    class_id: int
    box: np.ndarray
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1
    kalman: BoxKalman = field(init=False, repr=False)
    predicted: np.ndarray | None = field(default=None, repr=False)
    _t: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.kalman = BoxKalman(self.box)
        self._t = self.last_seen

    def predict(self, t: float) -> np.ndarray:
        """The box predicted for time ``t`` (never earlier than the last step)."""
        if t > self._t:
            self.predicted = self.kalman.predict(t - self._t)
            self._t = t
        elif self.predicted is None:
            self.predicted = self.kalman.box()
        return self.predicted

    def observe(self, box: np.ndarray, score: float, t: float) -> None:
        self.kalman.update(box)
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

    def update(self, detections: Detections, t: float) -> TrackerUpdate:
        """Associate one frame's detections (taken at time ``t``, seconds) with the tracks."""
        tracks = list(self.tracks.values())
        predicted = np.array([tr.predict(t) for tr in tracks]).reshape(-1, 4)
        high = np.flatnonzero(detections.high)
        low = np.flatnonzero(~detections.high)
        everyone = list(range(len(tracks)))
        pairs = self._match(tracks, predicted, detections, everyone, high, self.iou_threshold)
        taken = {ti for ti, _ in pairs}
        rest = [ti for ti in everyone if ti not in taken]
        pairs += self._match(tracks, predicted, detections, rest, low, self.low_iou_threshold)
        matched = []
        for ti, di in pairs:
            tracks[ti].observe(detections.boxes[di], float(detections.scores[di]), t)
            matched.append((tracks[ti], di))
        used = {di for _, di in pairs}
        created = [(self._create(detections, int(di), t), int(di))
                   for di in high if int(di) not in used]
        matched_ids = {tracks[ti].track_id for ti, _ in pairs}
        missed = [tr for tr in tracks if tr.track_id not in matched_ids]
        return TrackerUpdate(matched, created, missed)

    @staticmethod
    def _match(tracks: list[Track], predicted: np.ndarray, dets: Detections,
               track_idx: list[int], det_idx: np.ndarray,
               threshold: float) -> list[tuple[int, int]]:
        """Matches ``(track index, detection index)`` between the given subsets: same class,
        IoU of the predicted box at least ``threshold``."""
        if not track_idx or det_idx.size == 0:
            return []
        ious = iou_matrix(predicted[track_idx], dets.boxes[det_idx])
        same = (np.array([tracks[i].class_id for i in track_idx])[:, None]
                == np.asarray(dets.classes)[det_idx][None, :])
        ious = np.where(same, ious, 0.0)
        return [(track_idx[r], int(det_idx[c])) for r, c in match_by_iou(ious, threshold)]

    def _create(self, dets: Detections, index: int, t: float) -> Track:
        track = Track(next(self._ids), int(dets.classes[index]),
                      np.asarray(dets.boxes[index], np.float64).copy(),
                      float(dets.scores[index]), first_seen=t, last_seen=t)
        self.tracks[track.track_id] = track
        return track

    def expire(self, t: float, max_age: float) -> list[Track]:
        """Remove and return the tracks last seen ``max_age`` seconds or more before ``t``."""
        gone = [tr for tr in self.tracks.values() if t - tr.last_seen >= max_age]
        for track in gone:
            del self.tracks[track.track_id]
        return gone

    def remove_all(self) -> list[Track]:
        """Remove and return every track (at shutdown)."""
        gone = list(self.tracks.values())
        self.tracks.clear()
        return gone
