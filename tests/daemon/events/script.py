"""Scripted scenes for event tests: shapes that enter, cross zones, stop and leave on cue.

Each actor follows keyframes ``(frame, cx, cy)``, linearly interpolated, and is drawn only from
its first keyframe to its last; the background and its sensor noise come from
:class:`daemon.demo.synthetic.ShapeScene`, so the demo model sees scenes like its training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from daemon.demo.synthetic import CLASS_NAMES, GroundTruth, Shape, ShapeScene


@dataclass(frozen=True)
class Actor:
    """A shape of kind ``kind`` (index of ``CLASS_NAMES``), ``size`` pixels, BGR ``color``."""

    kind: int
    size: float
    color: tuple[int, int, int]
    keyframes: tuple[tuple[int, float, float], ...]

    @property
    def label(self) -> str:
        return CLASS_NAMES[self.kind]

    def position(self, frame: int) -> tuple[float, float] | None:
        """``(cx, cy)`` at ``frame``, or ``None`` outside the actor's time on stage."""
        frames = [k[0] for k in self.keyframes]
        if frame < frames[0] or frame > frames[-1]:
            return None
        cx = float(np.interp(frame, frames, [k[1] for k in self.keyframes]))
        cy = float(np.interp(frame, frames, [k[2] for k in self.keyframes]))
        return cx, cy


def render_script(actors: list[Actor], frames: int, size: tuple[int, int] = (320, 240),
                  seed: int = 0) -> list[tuple[np.ndarray, list[GroundTruth]]]:
    """Every frame ``(H, W, 3)`` BGR with the ground truth of the actors inside the image."""
    scene = ShapeScene(size[0], size[1], n_shapes=0, seed=seed)
    out = []
    for index in range(frames):
        scene.shapes = []
        for actor in actors:
            where = actor.position(index)
            if where is not None:
                scene.shapes.append(Shape(actor.kind, where[0], where[1], actor.size, 0.0,
                                          actor.color, 0.0, 0.0, 0.0))
        image, truth = scene.render()
        visible = [t for t in truth if t.box[2] - t.box[0] > 1 and t.box[3] - t.box[1] > 1]
        out.append((image, visible))
    return out


def write_script(path: Path, actors: list[Actor], frames: int, fps: float = 10.0,
                 size: tuple[int, int] = (320, 240), seed: int = 0) -> list[list[GroundTruth]]:
    """Write the scripted scene as an MJPG ``.avi``; returns each frame's ground truth."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {path}")
    truths = []
    try:
        for image, truth in render_script(actors, frames, size, seed):
            writer.write(image)
            truths.append(truth)
    finally:
        writer.release()
    return truths
