"""Annotated frames for the preview, the live view and snapshots.

Detections are predicted on ``frame.image`` and drawn on ``frame.display_image`` (picamera2's
main stream may be larger than the model stream): boxes and keypoints are scaled and masks are
pasted at display resolution, then :func:`daemon.visualization.draw_instances` draws them; a
status line (camera, fps, frame number, time) goes on top.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from daemon.config.schema import DrawSection
from daemon.inference.instances import Instances
from daemon.inference.masks import paste_masks
from daemon.structures.results import FrameResult, ModelInfo
from daemon.visualization import draw_instances

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def display_instances(result: FrameResult, draw: DrawSection) -> Instances:
    """The detections above ``draw.min_score`` at the display image's resolution."""
    frame, pred = result.frame, result.prediction
    shown = frame.display_image
    sy = shown.shape[0] / frame.image.shape[0]
    sx = shown.shape[1] / frame.image.shape[1]
    keep = np.flatnonzero(np.asarray(pred.scores) >= draw.min_score)
    boxes = np.asarray(pred.boxes, np.float32)[keep] * np.float32([sx, sy, sx, sy])
    masks = keypoints = None
    if draw.masks and pred.mask_probs is not None:
        masks = paste_masks(np.asarray(pred.mask_probs)[keep], boxes, shown.shape[:2],
                            getattr(pred, "mask_threshold", 0.5))
    if draw.keypoints and pred.keypoints is not None:
        keypoints = np.asarray(pred.keypoints, np.float32)[keep] * np.float32([sx, sy, 1])
    return Instances(shown.shape[:2], boxes, np.asarray(pred.scores)[keep],
                     np.asarray(pred.classes)[keep], pred_masks=masks, pred_keypoints=keypoints)


def tracked_instances(result: FrameResult) -> Instances:
    """One box per tracked object of a live frame (``result.objects``), with its label (the
    track's vote winner) and its latest score."""
    objects = result.objects or []
    shape = result.frame.display_image.shape[:2]
    boxes = np.array([o.box for o in objects], np.float32).reshape(-1, 4)
    return Instances(shape, boxes, np.array([o.score for o in objects], np.float32),
                     np.array([o.class_id for o in objects], np.int64))


def keypoint_pairs(model: ModelInfo) -> list[tuple[int, int]]:
    """The model's skeleton as index pairs."""
    index = {name: i for i, name in enumerate(model.keypoint_names)}
    return [(index[a], index[b]) for a, b in model.keypoint_connections
            if a in index and b in index]


def annotate(result: FrameResult, draw: DrawSection) -> np.ndarray:
    """A copy of the frame's display image with its detections (boxes, labels and, per ``draw``,
    masks and keypoints), or its tracked objects when ``result.objects`` is set, and a status
    line: ``(H, W, 3)`` uint8 BGR."""
    frame = result.frame
    shown = display_instances(result, draw) if result.objects is None \
        else tracked_instances(result)
    out = draw_instances(frame.display_image, shown, result.model.class_names,
                         keypoint_pairs(result.model), suppress_iou=draw.suppress_iou)
    if draw.fps:
        _status_line(out, f"{frame.camera}  {result.fps:.1f} fps  #{frame.seq}  "
                     + time.strftime("%H:%M:%S", time.localtime(frame.t_wall)))
    return out


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
