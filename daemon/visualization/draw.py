"""Annotate a BGR frame with boxes, labels, masks and keypoints (OpenCV drawing only)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from daemon.inference.instances import Instances

# A fixed, distinguishable palette (BGR), indexed by class id.
_PALETTE = np.array(
    [[56, 56, 255], [151, 157, 255], [31, 112, 255], [29, 178, 255], [49, 210, 207],
     [10, 249, 72], [23, 204, 146], [134, 219, 61], [52, 147, 26], [187, 212, 0],
     [168, 153, 44], [255, 194, 0], [147, 69, 52], [255, 115, 100], [236, 24, 0],
     [255, 56, 132], [133, 0, 82], [255, 56, 203], [200, 149, 255], [199, 55, 255]],
    dtype=np.uint8,
)


def color_for(class_id: int) -> tuple[int, int, int]:
    c = _PALETTE[int(class_id) % len(_PALETTE)]
    return int(c[0]), int(c[1]), int(c[2])


def draw_instances(
    image_bgr: np.ndarray,
    instances: Instances,
    class_names: Sequence[str] = (),
    keypoint_connections: Sequence[tuple[int, int]] = (),
    mask_alpha: float = 0.45,
) -> np.ndarray:
    """A copy of ``image_bgr`` with every instance drawn; masks blended, labels readable."""
    out = image_bgr.copy()
    if instances.pred_masks is not None:
        _blend_masks(out, instances.pred_masks, instances.pred_classes, mask_alpha)
    thickness = max(1, round(min(out.shape[:2]) / 300))
    for i in range(len(instances)):
        cls = int(instances.pred_classes[i])
        color = color_for(cls)
        x0, y0, x1, y1 = (int(round(v)) for v in instances.pred_boxes[i])
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
        name = class_names[cls] if cls < len(class_names) else str(cls)
        _label(out, f"{name} {instances.scores[i]:.0%}", (x0, y0), color)
        if instances.pred_keypoints is not None:
            _keypoints(out, instances.pred_keypoints[i], keypoint_connections, color, thickness)
    return out


def _blend_masks(out: np.ndarray, masks: np.ndarray, classes: np.ndarray, alpha: float) -> None:
    for mask, cls in zip(masks, classes):
        if not mask.any():
            continue
        color = np.array(color_for(int(cls)), np.float32)
        region = out[mask].astype(np.float32)
        out[mask] = (region * (1 - alpha) + color * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in color), 1, cv2.LINE_AA)


def _label(out: np.ndarray, text: str, origin: tuple[int, int],
           color: tuple[int, int, int]) -> None:
    scale = max(0.4, min(out.shape[:2]) / 1000)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x, y = origin[0], max(origin[1], th + base + 2)
    cv2.rectangle(out, (x, y - th - base - 2), (x + tw + 2, y), color, -1)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    text_color = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(out, text, (x + 1, y - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, text_color, 1,
                cv2.LINE_AA)


def _keypoints(out: np.ndarray, kps: np.ndarray, connections: Sequence[tuple[int, int]],
               color: tuple[int, int, int], thickness: int, min_score: float = 0.05) -> None:
    """``kps (K, 3)``: skeleton lines first, then the points."""
    visible = kps[:, 2] > min_score
    for a, b in connections:
        if visible[a] and visible[b]:
            pa = (int(kps[a, 0]), int(kps[a, 1]))
            pb = (int(kps[b, 0]), int(kps[b, 1]))
            cv2.line(out, pa, pb, color, thickness, cv2.LINE_AA)
    for x, y, s in kps:
        if s > min_score:
            cv2.circle(out, (int(x), int(y)), thickness + 2, (255, 255, 255), -1, cv2.LINE_AA)
            cv2.circle(out, (int(x), int(y)), thickness + 1, color, -1, cv2.LINE_AA)
