"""Constant-velocity Kalman filter of one box, with time steps in seconds.

State ``[cx, cy, w, h, vcx, vcy, vw, vh]`` (pixels, pixels per second); measurements are boxes
``[x0, y0, x1, y1]``. Noise scales with the box size, so the filter behaves the same for near
and far objects; steps may be irregular (frames skipped by motion gating or the fps cap).
"""

from __future__ import annotations

import numpy as np

_H = np.hstack([np.eye(4), np.zeros((4, 4))])
POSITION_WEIGHT = 0.05   # measurement noise, as a fraction of the box size
PROCESS_POSITION = 0.05  # position noise per second, fraction of the size
PROCESS_VELOCITY = 0.5   # velocity noise per second, fraction of the size per second
INITIAL_VELOCITY = 1.0   # initial velocity uncertainty, sizes per second


def box_to_state(box: np.ndarray) -> np.ndarray:
    """``[x0, y0, x1, y1]`` -> ``[cx, cy, w, h]``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, 1.0), max(y1 - y0, 1.0)])


def state_to_box(state: np.ndarray) -> np.ndarray:
    """``[cx, cy, w, h, ...]`` -> ``[x0, y0, x1, y1]`` (sizes at least 1 pixel)."""
    cx, cy = state[0], state[1]
    w, h = max(float(state[2]), 1.0), max(float(state[3]), 1.0)
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class BoxKalman:
    """Filter of one track's box."""

    def __init__(self, box: np.ndarray) -> None:
        z = box_to_state(box)
        size = self._size(z)
        self.x = np.concatenate([z, np.zeros(4)])
        pos_std = 2 * POSITION_WEIGHT * size
        vel_std = INITIAL_VELOCITY * size
        self.P = np.diag([pos_std**2] * 4 + [vel_std**2] * 4)

    @staticmethod
    def _size(state: np.ndarray) -> float:
        return float(max(state[2], state[3], 1.0))

    def predict(self, dt: float) -> np.ndarray:
        """Advance the state by ``dt`` seconds; returns the predicted box."""
        dt = max(float(dt), 0.0)
        if dt > 0:
            F = np.eye(8)
            F[:4, 4:] = np.eye(4) * dt
            size = self._size(self.x)
            q = np.array([(PROCESS_POSITION * size) ** 2] * 4
                         + [(PROCESS_VELOCITY * size) ** 2] * 4) * dt
            self.x = F @ self.x
            self.x[2:4] = np.maximum(self.x[2:4], 1.0)
            self.P = F @ self.P @ F.T + np.diag(q)
        return self.box()

    def update(self, box: np.ndarray) -> None:
        """Correct the state with a measured box."""
        z = box_to_state(box)
        r = np.diag([(POSITION_WEIGHT * self._size(z)) ** 2] * 4)
        s = _H @ self.P @ _H.T + r
        gain = np.linalg.solve(s, _H @ self.P).T
        self.x = self.x + gain @ (z - _H @ self.x)
        self.P = (np.eye(8) - gain @ _H) @ self.P

    def box(self) -> np.ndarray:
        return state_to_box(self.x)

    def velocity(self) -> np.ndarray:
        """``[vcx, vcy]`` in pixels per second."""
        return self.x[4:6].copy()
