"""Draw a frame's detections (boxes, labels, masks, keypoints) and an fps line with OpenCV."""

from __future__ import annotations

import time
from collections.abc import Sequence

import cv2
import numpy as np

from daemon.config.schema import DrawSection
from daemon.inference.masks import paste_masks
from daemon.pipeline.results import FrameResult

# Distinguishable BGR colours, indexed by class id.
PALETTE = (
    (56, 56, 255), (255, 157, 31), (49, 210, 29), (0, 194, 255), (203, 56, 255),
    (255, 255, 0), (147, 69, 52), (10, 249, 72), (255, 115, 100), (133, 0, 82),
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_for(class_id: int) -> tuple[int, int, int]:
    return PALETTE[int(class_id) % len(PALETTE)]


def annotate(result: FrameResult, draw: DrawSection) -> np.ndarray:
    """A copy of the frame's display image with the detections above ``draw.min_score``.

    Boxes and masks predicted on ``frame.image`` are scaled to the display image.
    Returns ``(H, W, 3)`` uint8 BGR.
    """
    frame = result.frame
    out = frame.display_image.copy()
    pred = result.prediction
    keep = np.flatnonzero(np.asarray(pred.scores) >= draw.min_score)
    sy = out.shape[0] / frame.image.shape[0]
    sx = out.shape[1] / frame.image.shape[1]
    boxes = np.asarray(pred.boxes, np.float32)[keep] * np.float32([sx, sy, sx, sy])
    classes = np.asarray(pred.classes)[keep]
    thickness = max(1, round(min(out.shape[:2]) / 320))
    if draw.masks and pred.mask_probs is not None and keep.size:
        masks = paste_masks(pred.mask_probs[keep], boxes, out.shape[:2],
                            getattr(pred, "mask_threshold", 0.5))
        _blend_masks(out, masks, classes)
    names = result.model.class_names
    for i, (box, cls) in enumerate(zip(boxes, classes, strict=True)):
        color = color_for(int(cls))
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        if draw.boxes:
            cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
        if draw.labels:
            name = names[int(cls)] if int(cls) < len(names) else str(int(cls))
            _label(out, f"{name} {float(pred.scores[keep[i]]):.0%}", (x0, y0), color)
        if draw.keypoints and pred.keypoints is not None:
            points = np.asarray(pred.keypoints[keep[i]], np.float32) * np.float32([sx, sy, 1])
            _keypoints(out, points, color, thickness)
    if draw.fps:
        _status_line(out, f"{frame.camera}  {result.fps:.1f} fps  #{frame.seq}  "
                     + time.strftime("%H:%M:%S", time.localtime(frame.t_wall)))
    return out


def _blend_masks(image: np.ndarray, masks: np.ndarray, classes: Sequence[int],
                 alpha: float = 0.45) -> None:
    overlay = image.copy()
    for mask, cls in zip(masks, classes, strict=True):
        overlay[mask] = color_for(int(cls))
    cv2.addWeighted(overlay, alpha, image, 1 - alpha, 0, dst=image)


def _label(image: np.ndarray, text: str, origin: tuple[int, int],
           color: tuple[int, int, int]) -> None:
    scale = max(0.35, min(image.shape[:2]) / 700)
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    x = min(max(origin[0], 0), max(0, image.shape[1] - w - 2))
    y = origin[1] - h - base - 2 if origin[1] - h - base - 2 >= 0 else origin[1] + 1
    cv2.rectangle(image, (x, y), (x + w + 2, y + h + base + 2), color, -1)
    cv2.putText(image, text, (x + 1, y + h + 1), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def _keypoints(image: np.ndarray, points: np.ndarray, color: tuple[int, int, int],
               thickness: int) -> None:
    for x, y, score in points:
        if score > 0.05:
            cv2.circle(image, (int(x), int(y)), 2 + thickness, color, -1, cv2.LINE_AA)


def _status_line(image: np.ndarray, text: str) -> None:
    scale = max(0.4, min(image.shape[:2]) / 600)
    (w, h), base = cv2.getTextSize(text, _FONT, scale, 1)
    cv2.rectangle(image, (0, 0), (w + 8, h + base + 8), (0, 0, 0), -1)
    cv2.putText(image, text, (4, h + 4), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of a BGR image."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
