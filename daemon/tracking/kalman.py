"""Constant-velocity Kalman filters of boxes, with time steps in seconds, for many boxes at once.

State per box ``[cx, cy, w, h, vcx, vcy, vw, vh]`` (pixels, pixels per second); measurements
are boxes ``[x0, y0, x1, y1]``. Noise scales with the box size, so the filter behaves the same
for near and far objects; steps may be irregular (frames skipped by motion gating or the fps
cap).

The transition only couples each coordinate with its own velocity, the measurement reads the
four coordinates and every noise is diagonal, so the 8x8 covariance of a box is four
independent 2x2 blocks ``[[pp, pv], [pv, vv]]``: :class:`KalmanBank` keeps those blocks as
``(N, 4)`` arrays and runs predict / update for all tracks in a few array operations (the same
filter as the 8x8 matrix form, without its per-track cost).
"""

from __future__ import annotations

import numpy as np

POSITION_WEIGHT = 0.05   # measurement noise, as a fraction of the box size
PROCESS_POSITION = 0.05  # position noise per second, fraction of the size
PROCESS_VELOCITY = 0.5   # velocity noise per second, fraction of the size per second
INITIAL_VELOCITY = 1.0   # initial velocity uncertainty, sizes per second


def boxes_to_states(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4)`` ``[x0, y0, x1, y1]`` -> ``(N, 4)`` ``[cx, cy, w, h]`` (sizes at least 1)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centers = (boxes[:, :2] + boxes[:, 2:]) / 2
    sizes = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
    return np.concatenate([centers, sizes], axis=1)


def states_to_boxes(states: np.ndarray) -> np.ndarray:
    """``(N, 4+)`` ``[cx, cy, w, h, ...]`` -> ``(N, 4)`` ``[x0, y0, x1, y1]`` (sizes >= 1)."""
    half = np.maximum(states[:, 2:4], 1.0) / 2
    return np.concatenate([states[:, :2] - half, states[:, :2] + half], axis=1)


def _sizes(states: np.ndarray) -> np.ndarray:
    """``(N,)`` box size used to scale the noise: ``max(w, h, 1)``."""
    return np.maximum(np.maximum(states[:, 2], states[:, 3]), 1.0)


class KalmanBank:
    """The filters of ``N`` boxes; row ``i`` is box ``i`` (rows are added and removed in
    bulk by :meth:`add` and :meth:`keep`).

    Attributes:
        pos: ``(N, 4)`` ``[cx, cy, w, h]``.
        vel: ``(N, 4)`` their velocities per second.
        pp, pv, vv: ``(N, 4)`` covariance blocks per coordinate (position, cross, velocity).
    """

    def __init__(self) -> None:
        empty = np.zeros((0, 4))
        self.pos, self.vel = empty.copy(), empty.copy()
        self.pp, self.pv, self.vv = empty.copy(), empty.copy(), empty.copy()

    def __len__(self) -> int:
        return int(self.pos.shape[0])

    def add(self, boxes: np.ndarray) -> None:
        """Append one filter per box, at rest, with size-scaled uncertainty."""
        z = boxes_to_states(boxes)
        size = _sizes(z)[:, None]
        ones = np.ones((z.shape[0], 4))
        self.pos = np.concatenate([self.pos, z])
        self.vel = np.concatenate([self.vel, np.zeros_like(z)])
        self.pp = np.concatenate([self.pp, ones * (2 * POSITION_WEIGHT * size) ** 2])
        self.pv = np.concatenate([self.pv, np.zeros_like(z)])
        self.vv = np.concatenate([self.vv, ones * (INITIAL_VELOCITY * size) ** 2])

    def keep(self, rows: np.ndarray) -> None:
        """Keep only ``rows`` (indices or a boolean mask), in that order."""
        for name in ("pos", "vel", "pp", "pv", "vv"):
            setattr(self, name, getattr(self, name)[rows])

    def predict(self, dt: np.ndarray) -> None:
        """Advance every filter by its own ``dt`` seconds (``(N,)``; 0 leaves it unchanged)."""
        dt = np.maximum(np.asarray(dt, np.float64).reshape(-1), 0.0)[:, None]
        size = _sizes(self.pos)[:, None]  # the noise scales with the size before the step
        self.pos = self.pos + self.vel * dt
        self.pos[:, 2:4] = np.where(dt > 0, np.maximum(self.pos[:, 2:4], 1.0), self.pos[:, 2:4])
        self.pp = (self.pp + 2 * dt * self.pv + dt * dt * self.vv
                   + (PROCESS_POSITION * size) ** 2 * dt)
        self.pv = self.pv + dt * self.vv
        self.vv = self.vv + (PROCESS_VELOCITY * size) ** 2 * dt

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct the filters ``rows`` (``(K,)`` distinct indices) with measured boxes
        ``(K, 4)``."""
        rows = np.asarray(rows, np.int64).reshape(-1)
        if rows.size == 0:
            return
        z = boxes_to_states(boxes)
        r = (POSITION_WEIGHT * _sizes(z))[:, None] ** 2
        pp, pv, vv = self.pp[rows], self.pv[rows], self.vv[rows]
        gain_p, gain_v = pp / (pp + r), pv / (pp + r)
        innovation = z - self.pos[rows]
        self.pos[rows] += gain_p * innovation
        self.vel[rows] += gain_v * innovation
        self.pp[rows] = (1 - gain_p) * pp  # (I - K H) P, block by block
        self.pv[rows] = (1 - gain_p) * pv
        self.vv[rows] = vv - gain_v * pv

    def boxes(self) -> np.ndarray:
        """``(N, 4)`` the filtered boxes."""
        return states_to_boxes(self.pos)

