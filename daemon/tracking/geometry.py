"""Box geometry of the tracker: areas, IoU matrices, class-agnostic duplicate suppression.

Boxes are ``(N, 4)`` float arrays ``[x0, y0, x1, y1]`` in pixels.
"""

from __future__ import annotations

import numpy as np


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` areas (0 for empty or inverted boxes)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of every box of ``a`` with every box of ``b``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = box_areas(a)[:, None] + box_areas(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def iou(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> float:
    """IoU of two single boxes."""
    return float(iou_matrix(np.asarray(a), np.asarray(b))[0, 0])


def suppress_duplicates(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by a class-agnostic NMS: a box overlapping a higher-scoring kept box with
    IoU above ``threshold`` goes (the same object reported under two labels). ``threshold``
    0 keeps everything. Returns kept indices in descending score order."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    if threshold <= 0 or order.size < 2:
        return order
    overlaps = iou_matrix(boxes, boxes) > threshold
    kept = np.zeros(order.size, bool)
    for i in order:  # a box goes when it overlaps any box kept before it
        kept[i] = not (overlaps[i] & kept).any()
    return order[kept[order]]
