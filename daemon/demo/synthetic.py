"""Synthetic scenes of moving coloured shapes (squares, circles, triangles) like the fixtures'.

Used by ``d2stream demo-video`` when no camera is at hand, by the tests and the benchmark: each
frame comes with its ground truth, so detections can be checked against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES = ("square", "circle", "triangle")


@dataclass
class Shape:
    """One moving shape: ``kind`` indexes :data:`CLASS_NAMES`; sizes and positions in pixels."""

    kind: int
    cx: float
    cy: float
    size: float
    angle: float
    color: tuple[int, int, int]
    vx: float
    vy: float
    spin: float

    def polygon(self) -> np.ndarray:
        """``(P, 2)`` int32 outline."""
        if self.kind == 1:
            pts = cv2.ellipse2Poly((int(self.cx), int(self.cy)),
                                   (int(self.size / 2), int(self.size * 0.45)),
                                   int(self.angle), 0, 360, 8)
            return pts.astype(np.int32)
        n, phase = (4, math.pi / 4) if self.kind == 0 else (3, -math.pi / 2)
        radius = self.size / math.sqrt(2) if self.kind == 0 else self.size / math.sqrt(3)
        theta = phase + math.radians(self.angle) + np.arange(n) * 2 * math.pi / n
        pts = np.stack([self.cx + radius * np.cos(theta), self.cy + radius * np.sin(theta)], 1)
        return np.round(pts).astype(np.int32)


@dataclass(frozen=True)
class GroundTruth:
    """A visible shape of one frame: ``label`` and ``box`` ``(x0, y0, x1, y1)`` in pixels."""

    label: str
    box: tuple[float, float, float, float]


class ShapeScene:
    """A bouncing-shapes scene of ``width x height`` pixels, deterministic for a ``seed``."""

    def __init__(self, width: int = 320, height: int = 240, n_shapes: int = 3,
                 seed: int = 0, speed: float = 3.0) -> None:
        self.width, self.height = width, height
        self.rng = np.random.default_rng(seed)
        self.background = self._background_color()
        self.shapes = [self._new_shape(i, n_shapes, speed) for i in range(n_shapes)]
        self._keep_inside()

    def _background_color(self) -> tuple[int, int, int]:
        hue = int(self.rng.integers(0, 180))
        hsv = np.uint8([[[hue, int(self.rng.integers(60, 150)), int(self.rng.integers(190, 240))]]])
        return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])

    def _shape_color(self) -> tuple[int, int, int]:
        bg = np.array(self.background, np.float64)
        while True:
            color = self.rng.integers(20, 236, size=3)
            if np.linalg.norm(color - bg) > 150:
                return tuple(int(v) for v in color)

    def _new_shape(self, index: int, count: int, speed: float) -> Shape:
        size = float(self.rng.uniform(0.22, 0.32) * min(self.width, self.height))
        lane = (index + 0.5) * self.width / count
        angle = float(self.rng.uniform(-20, 20))
        direction = self.rng.uniform(0, 2 * math.pi)
        return Shape(kind=index % 3, cx=lane, cy=float(self.rng.uniform(size, self.height - size)),
                     size=size, angle=angle, color=self._shape_color(),
                     vx=speed * math.cos(direction), vy=speed * math.sin(direction),
                     spin=float(self.rng.uniform(-2, 2)))

    def step(self) -> None:
        """Move every shape one frame, bouncing off the borders (shapes stay fully inside)."""
        for s in self.shapes:
            s.cx, s.cy, s.angle = s.cx + s.vx, s.cy + s.vy, s.angle + s.spin
            if s.kind == 2 and abs(s.angle) >= 20.0:
                s.angle, s.spin = math.copysign(20.0, s.angle), -s.spin
        self._keep_inside()

    def _keep_inside(self) -> None:
        for s in self.shapes:
            pts = s.polygon()
            (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
            if x0 < 1 or x1 > self.width - 2:
                s.vx = abs(s.vx) if x0 < 1 else -abs(s.vx)
                s.cx += (1 - x0) if x0 < 1 else (self.width - 2 - x1)
            if y0 < 1 or y1 > self.height - 2:
                s.vy = abs(s.vy) if y0 < 1 else -abs(s.vy)
                s.cy += (1 - y0) if y0 < 1 else (self.height - 2 - y1)

    def render(self) -> tuple[np.ndarray, list[GroundTruth]]:
        """The current frame ``(H, W, 3)`` uint8 BGR and its ground truth."""
        image = np.empty((self.height, self.width, 3), np.uint8)
        image[:] = self.background
        noise = self.rng.normal(0, 5, size=image.shape)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
        truth = []
        for s in self.shapes:
            pts = s.polygon()
            cv2.fillPoly(image, [pts], s.color, lineType=cv2.LINE_AA)
            x0, y0 = np.clip(pts.min(0), 0, [self.width, self.height])
            x1, y1 = np.clip(pts.max(0), 0, [self.width, self.height])
            truth.append(GroundTruth(CLASS_NAMES[s.kind], (float(x0), float(y0),
                                                           float(x1), float(y1))))
        return image, truth


def _fourcc(path: Path) -> int:
    return cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))


def write_demo_video(path: str | Path, frames: int = 100, size: tuple[int, int] = (320, 240),
                     fps: float = 10.0, seed: int = 0) -> list[list[GroundTruth]]:
    """Write a video of moving shapes (``.mp4``: mp4v, ``.avi``: MJPG).

    Returns:
        the ground truth of every frame, in order.

    Raises:
        OSError: when OpenCV cannot write ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scene = ShapeScene(size[0], size[1], seed=seed)
    writer = cv2.VideoWriter(str(path), _fourcc(path), fps, size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write a video to {path}")
    truths = []
    try:
        for _ in range(frames):
            image, truth = scene.render()
            writer.write(image)
            truths.append(truth)
            scene.step()
    finally:
        writer.release()
    return truths


def synthetic_scene(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A still BGR scene of coloured circles and squares (deterministic), for timing."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 127, np.uint8)
    for _ in range(12):
        color = tuple(int(c) for c in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(10, max(11, min(h, w) // 6)))
        cv2.circle(img, (x, y), r, color, -1) if rng.random() < 0.5 else cv2.rectangle(
            img, (x - r, y - r), (x + r, y + r), color, -1)
    return img
