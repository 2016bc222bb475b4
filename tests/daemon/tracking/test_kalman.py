"""The batched Kalman bank equals the textbook 8x8 constant-velocity filter, box by box."""

from __future__ import annotations

import numpy as np

from daemon.tracking import kalman
from daemon.tracking.kalman import KalmanBank


class MatrixKalman:
    """Reference: the full 8x8 state-space form (x' = F x, P' = F P F^T + Q, gain via S)."""

    H = np.hstack([np.eye(4), np.zeros((4, 4))])

    def __init__(self, box: np.ndarray) -> None:
        z = kalman.boxes_to_states(box)[0]
        size = max(z[2], z[3], 1.0)
        self.x = np.concatenate([z, np.zeros(4)])
        self.P = np.diag([(2 * kalman.POSITION_WEIGHT * size) ** 2] * 4
                         + [(kalman.INITIAL_VELOCITY * size) ** 2] * 4)

    def predict(self, dt: float) -> None:
        if dt <= 0:
            return
        F = np.eye(8)
        F[:4, 4:] = np.eye(4) * dt
        size = max(self.x[2], self.x[3], 1.0)
        q = np.array([(kalman.PROCESS_POSITION * size) ** 2] * 4
                     + [(kalman.PROCESS_VELOCITY * size) ** 2] * 4) * dt
        self.x = F @ self.x
        self.x[2:4] = np.maximum(self.x[2:4], 1.0)
        self.P = F @ self.P @ F.T + np.diag(q)

    def update(self, box: np.ndarray) -> None:
        z = kalman.boxes_to_states(box)[0]
        r = np.eye(4) * (kalman.POSITION_WEIGHT * max(z[2], z[3], 1.0)) ** 2
        gain = np.linalg.solve(self.H @ self.P @ self.H.T + r, self.H @ self.P).T
        self.x = self.x + gain @ (z - self.H @ self.x)
        self.P = (np.eye(8) - gain @ self.H) @ self.P


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 600, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(0.5, 200, (n, 2))], axis=1)


def test_bank_matches_the_matrix_filter_per_box() -> None:
    rng = np.random.default_rng(0)
    boxes = random_boxes(rng, 6)
    bank = KalmanBank()
    bank.add(boxes)
    refs = [MatrixKalman(b[None]) for b in boxes]
    for _ in range(40):
        dt = rng.choice([0.0, 0.04, 0.1, 0.7], size=len(refs))  # irregular, some not stepped
        bank.predict(dt)
        for ref, step in zip(refs, dt, strict=True):
            ref.predict(float(step))
        rows = np.flatnonzero(rng.random(len(refs)) < 0.6)   # some tracks measured, some not
        measured = bank.boxes()[rows] + rng.normal(0, 3, (rows.size, 4))
        bank.update(rows, measured)
        for row, box in zip(rows, measured, strict=True):
            refs[row].update(box[None])
        for i, ref in enumerate(refs):
            assert np.allclose(bank.pos[i], ref.x[:4], rtol=1e-9, atol=1e-7)
            assert np.allclose(bank.vel[i], ref.x[4:], rtol=1e-9, atol=1e-7)
            assert np.allclose(bank.pp[i], ref.P[:4, :4].diagonal(), rtol=1e-9)
            assert np.allclose(bank.pv[i], ref.P[:4, 4:].diagonal(), rtol=1e-9, atol=1e-9)
            assert np.allclose(bank.vv[i], ref.P[4:, 4:].diagonal(), rtol=1e-9)
            # the blocks are all there is: no coupling between coordinates appears
            off = ref.P.copy()
            off[np.arange(8), np.arange(8)] = 0
            off[np.arange(4), np.arange(4, 8)] = 0
            off[np.arange(4, 8), np.arange(4)] = 0
            assert np.allclose(off, 0, atol=1e-9)


def test_keep_and_add_preserve_rows() -> None:
    rng = np.random.default_rng(1)
    bank = KalmanBank()
    bank.add(random_boxes(rng, 4))
    bank.predict(np.full(4, 0.1))
    before = bank.boxes()
    bank.keep(np.array([True, False, True, False]))
    assert np.array_equal(bank.boxes(), before[[0, 2]])
    new = random_boxes(rng, 3)
    bank.add(new)
    assert len(bank) == 5
    assert np.allclose(bank.boxes()[2:], new)
