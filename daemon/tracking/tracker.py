"""Multi-object tracker: IoU association with constant-velocity Kalman prediction, in two
stages like ByteTrack.

Each :meth:`Tracker.update` takes one frame's detections, split into *high* ones (they passed
the label's ``min_score``) and *low* ones (above the model's floor only):

1. every track's box is predicted to the frame's time;
2. high detections are matched to tracks whatever their labels (maximum IoU of the predicted
   box, or of the last measured one when the prediction ran away, at least ``iou_threshold``):
   one physical object is one track even when the model's label flips; *confirmed* tracks
   (matched ``CONFIRM_HITS`` times) are served first, so a young duplicate never steals an
   established object's detection;
3. low detections are matched to the tracks still unmatched (at least ``low_iou_threshold``):
   a dip in confidence (occlusion, blur) keeps the track alive but never starts a new one;
4. unmatched high detections start new tracks with new ids (1, 2, ... per tracker), except
   those overlapping a track (or a detection starting one) by ``new_track_iou`` or more: the
   model often reports one object two or three times under different labels.

Each track keeps score-weighted label votes over its life (:meth:`Track.vote`): its label
(``class_id``) is the current winner, changed only when another label's votes exceed it.
Tracks that are not matched keep their last state; :meth:`Tracker.expire` removes tracks not
seen for a while (the caller decides how long). The Kalman filters of all tracks live in one
:class:`KalmanBank` (row ``i`` is the ``i``-th live track), so a frame costs a few array
operations however many objects there are.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from daemon.tracking.assignment import match_by_iou
from daemon.tracking.geometry import iou_matrix
from daemon.tracking.kalman import KalmanBank, states_to_boxes

CONFIRM_HITS = 3  # a track matched this often is matched before younger (tentative) ones


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
    filter is a row of the tracker's :class:`KalmanBank`. ``class_id`` is the label with the
    most votes (sum of the scores of the detections of that label matched to the track)."""

    track_id: int
    class_id: int
    box: np.ndarray
    score: float
    first_seen: float
    last_seen: float
    hits: int = 1
    votes: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.votes:
            self.votes = {self.class_id: self.score}

    def observe(self, box: np.ndarray, score: float, t: float, class_id: int) -> None:
        self.box = np.asarray(box, np.float64).copy()
        self.score = float(score)
        self.last_seen = t
        self.hits += 1
        self.vote(class_id, score)

    def vote(self, class_id: int, score: float) -> None:
        """Add ``score`` to ``class_id``'s votes; the label changes only when another one's
        votes exceed the current winner's (a tie keeps it)."""
        self.votes[class_id] = self.votes.get(class_id, 0.0) + float(score)
        if self.votes[class_id] > self.votes.get(self.class_id, 0.0):
            self.class_id = class_id


@dataclass
class TrackerUpdate:
    """What one :meth:`Tracker.update` did: ``matched`` and ``created`` pair a track with the
    index of its detection; ``missed`` are the tracks that got none."""

    matched: list[tuple[Track, int]]
    created: list[tuple[Track, int]]
    missed: list[Track]


class Tracker:
    """The tracks of one camera."""

    def __init__(self, iou_threshold: float = 0.3, low_iou_threshold: float = 0.5,
                 new_track_iou: float = 0.0) -> None:
        self.iou_threshold = iou_threshold
        self.low_iou_threshold = low_iou_threshold
        self.new_track_iou = new_track_iou
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
        confirmed = np.array([tr.hits >= CONFIRM_HITS for tr in tracks], bool)
        last = np.array([tr.box for tr in tracks], np.float64).reshape(-1, 4)
        pairs = self._match(predicted, detections, everyone[confirmed], high,
                            self.iou_threshold, last)
        free = np.setdiff1d(high, [di for _, di in pairs])
        pairs += self._match(predicted, detections, everyone[~confirmed], free,
                             self.iou_threshold, last)
        rest = np.setdiff1d(everyone, [ti for ti, _ in pairs])
        pairs += self._match(predicted, detections, rest, low, self.low_iou_threshold, last)
        if pairs:
            rows, dets = (np.array(v, np.int64) for v in zip(*pairs, strict=True))
            self._bank.update(rows, detections.boxes[dets])
        matched = []
        for ti, di in pairs:
            tracks[ti].observe(detections.boxes[di], float(detections.scores[di]), t,
                               int(detections.classes[di]))
            matched.append((tracks[ti], di))
        used = {di for _, di in pairs}
        fresh = self._fresh([int(di) for di in high if int(di) not in used], detections,
                            len(tracks))
        created = [(self._create(detections, di, t), di) for di in fresh]
        if fresh:
            self._bank.add(detections.boxes[fresh])
            self._stepped = np.concatenate([self._stepped, np.full(len(fresh), t)])
        matched_ids = {tracks[ti].track_id for ti, _ in pairs}
        missed = [tr for tr in tracks if tr.track_id not in matched_ids]
        return TrackerUpdate(matched, created, missed)

    def _fresh(self, candidates: list[int], detections: Detections, n_tracks: int) -> list[int]:
        """The unmatched high detections that start tracks: not those overlapping a track's
        filtered box by ``new_track_iou`` or more (the same object reported twice, often under
        another label), nor each other (the higher score goes first)."""
        if not candidates or self.new_track_iou <= 0:
            return candidates
        existing = self._bank.boxes()[:n_tracks]
        fresh: list[int] = []
        for di in sorted(candidates, key=lambda d: -float(detections.scores[d])):
            others = np.concatenate([existing, detections.boxes[fresh]])
            if not len(others) or iou_matrix(detections.boxes[[di]], others).max() \
                    < self.new_track_iou:
                fresh.append(di)
        return sorted(fresh)

    def _predict(self, t: float) -> np.ndarray:
        """``(N, 4)`` every track's box predicted for time ``t`` (a filter is never stepped
        back: one already at or past ``t`` stays where it is)."""
        dt = np.maximum(t - self._stepped, 0.0)
        if dt.any():
            self._bank.predict(dt)
            self._stepped = np.maximum(self._stepped, t)
        return self._bank.boxes()

    @staticmethod
    def _match(predicted: np.ndarray, dets: Detections, track_idx: np.ndarray,
               det_idx: np.ndarray, threshold: float,
               last: np.ndarray | None = None) -> list[tuple[int, int]]:
        """Matches ``(track index, detection index)`` between the given subsets: IoU of the
        predicted box (or of the last measured one, ``last``) at least ``threshold``, whatever
        the labels."""
        if track_idx.size == 0 or det_idx.size == 0:
            return []
        ious = iou_matrix(predicted[track_idx], dets.boxes[det_idx])
        if last is not None:  # a prediction run away (a bounce, a stop) must not lose it
            ious = np.maximum(ious, iou_matrix(last[track_idx], dets.boxes[det_idx]))
        return [(int(track_idx[r]), int(det_idx[c])) for r, c in match_by_iou(ious, threshold)]

    def _create(self, dets: Detections, index: int, t: float) -> Track:
        track = Track(next(self._ids), int(dets.classes[index]),
                      np.asarray(dets.boxes[index], np.float64).copy(),
                      float(dets.scores[index]), first_seen=t, last_seen=t)
        self.tracks[track.track_id] = track
        self._rows.append(track)
        return track

    def predicted_boxes(self, t: float) -> list[tuple[Track, np.ndarray]]:
        """Every track with its filtered box predicted for time ``t`` (``(4,)``), without
        advancing the filters (the live view draws them between inferences)."""
        if not self._rows:
            return []
        dt = np.maximum(t - self._stepped, 0.0)[:, None]
        states = self._bank.pos + self._bank.vel * dt
        return list(zip(self._rows, states_to_boxes(states), strict=True))

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
