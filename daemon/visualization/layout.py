"""What to draw and where: one tag per object, labels that do not cover each other.

Detectron2's per-class NMS lets one shape keep a box for each class it might be (a weak model
calls a square "square 70%" and "circle 60%"), which reads as several tags on one object. For
display only, overlapping detections are suppressed regardless of class (the highest score
stays); ``--json``, events and COCO results keep every detection.
"""

from __future__ import annotations

import numpy as np

# Display defaults: the score a detection needs to be drawn, and the box overlap (IoU) above
# which a lower-scoring detection counts as the same object. 0.6 was chosen on the demo
# model's held-out fixture images (README "Demo"): 14 of 22 shapes drawn and 4 false tags,
# against 16 and 13 at 0.5.
DISPLAY_MIN_SCORE = 0.6
DISPLAY_SUPPRESS_IOU = 0.5


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one ``(4,)`` xyxy box with each row of ``others`` ``(N, 4)``."""
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def one_per_object(boxes: np.ndarray, scores: np.ndarray, iou: float | None) -> np.ndarray:
    """Indices of the detections to draw, best first: greedy class-agnostic NMS at ``iou``
    (``None`` or ``>= 1``: every detection, best first)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    if iou is None or iou >= 1.0 or len(order) == 0:
        return order
    boxes = np.asarray(boxes, np.float64)
    kept: list[int] = []
    for i in order:
        if kept and (box_iou(boxes[i], boxes[kept]) > iou).any():
            continue
        kept.append(int(i))
    return np.asarray(kept, np.int64)


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _candidates(box: np.ndarray, w: int, h: int, image_hw: tuple[int, int]) -> list[Rect]:
    """Where a ``w x h`` label may go: above the box, inside its top, below it, then stepping
    down inside the box; x is kept inside the image."""
    height, width = image_hw
    x = int(min(max(0, round(box[0])), max(0, width - w)))
    top, bottom = int(round(box[1])), int(round(box[3]))
    ys = [top - h, top, bottom, *range(top + h, max(top + h, bottom - h) + 1, h)]
    rects = []
    for y in ys:
        y = min(max(0, y), max(0, height - h))
        rects.append((x, y, x + w, y + h))
    return rects


def place_labels(boxes: np.ndarray, sizes: list[tuple[int, int]],
                 image_hw: tuple[int, int]) -> list[Rect]:
    """A rectangle for each label (``sizes[i] = (w, h)`` for ``boxes[i]``), in the given order
    (best detection first): the first candidate place that covers no label placed before it,
    else the first candidate."""
    placed: list[Rect] = []
    for box, (w, h) in zip(np.asarray(boxes, np.float64), sizes):
        options = _candidates(box, w, h, image_hw)
        free = next((r for r in options if not any(_overlaps(r, p) for p in placed)), None)
        placed.append(free or options[0])
    return placed
