"""Annotate a BGR frame with boxes, labels, masks, keypoints and panoptic segments (OpenCV only)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from daemon.inference.instances import Instances
from daemon.inference.panoptic import PanopticResult
from daemon.visualization.layout import DISPLAY_SUPPRESS_IOU, one_per_object, place_labels

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
    mask_alpha: float = 0.3,
    suppress_iou: float | None = DISPLAY_SUPPRESS_IOU,
) -> np.ndarray:
    """A copy of ``image_bgr`` with the instances drawn: one per object (a detection whose box
    overlaps a better one's by more than ``suppress_iou`` is left out, whatever its class;
    ``None``: all), masks blended at ``mask_alpha``, labels placed so they do not cover each
    other."""
    out = image_bgr.copy()
    instances = instances[one_per_object(instances.pred_boxes, instances.scores, suppress_iou)]
    if instances.pred_masks is not None:
        _blend_masks(out, instances.pred_masks, instances.pred_classes, mask_alpha)
    thickness = max(1, round(min(out.shape[:2]) / 300))
    for i in range(len(instances)):
        color = color_for(int(instances.pred_classes[i]))
        x0, y0, x1, y1 = (int(round(v)) for v in instances.pred_boxes[i])
        cv2.rectangle(out, (x0, y0), (x1, y1), color, thickness, cv2.LINE_AA)
        if instances.pred_keypoints is not None:
            _keypoints(out, instances.pred_keypoints[i], keypoint_connections, color, thickness)
    texts = [f"{_name(class_names, int(c))} {s:.0%}"
             for c, s in zip(instances.pred_classes, instances.scores)]
    scale = _label_scale(out)
    rects = place_labels(instances.pred_boxes, [_label_size(t, scale) for t in texts],
                         out.shape[:2])
    for text, rect, cls in zip(texts, rects, instances.pred_classes):
        _label_at(out, text, rect, color_for(int(cls)), scale)
    return out


def _name(class_names: Sequence[str], cls: int) -> str:
    return class_names[cls] if cls < len(class_names) else str(cls)


def _label_scale(out: np.ndarray) -> float:
    return max(0.4, min(out.shape[:2]) / 1000)


def _label_size(text: str, scale: float) -> tuple[int, int]:
    """``(w, h)`` of a label's filled rectangle."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    return tw + 2, th + base + 2


def _label_at(out: np.ndarray, text: str, rect: tuple[int, int, int, int],
              color: tuple[int, int, int], scale: float) -> None:
    x0, y0, x1, y1 = rect
    _, base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (x0, y0), (x1, y1), color, -1)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    text_color = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(out, text, (x0 + 1, y1 - base - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, text_color,
                1, cv2.LINE_AA)


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
    """A label whose bottom-left corner is ``origin`` (kept inside the image's top)."""
    scale = _label_scale(out)
    w, h = _label_size(text, scale)
    x, y = origin[0], max(origin[1], h)
    _label_at(out, text, (x, y - h, x + w, y), color, scale)


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


# Muted colours for stuff segments (BGR), distinct from the thing palette's saturated ones.
_STUFF_PALETTE = np.array(
    [[180, 130, 70], [60, 130, 60], [140, 140, 140], [90, 160, 200], [160, 100, 160],
     [120, 180, 170], [70, 90, 150], [200, 190, 150]],
    dtype=np.uint8,
)


def _segment_colors(result: PanopticResult) -> np.ndarray:
    """``(max_id + 1, 3)`` uint8 colour of every segment id (0: unused)."""
    top = max([int(s["id"]) for s in result.segments_info], default=0)
    colors = np.zeros((top + 1, 3), np.uint8)
    for n, seg in enumerate(result.segments_info):
        if seg["isthing"]:
            # Same class, same hue; successive instances alternate in brightness.
            shade = 1.0 - 0.25 * (n % 3)
            colors[seg["id"]] = (np.array(color_for(seg["category_id"])) * shade).astype(np.uint8)
        else:
            colors[seg["id"]] = _STUFF_PALETTE[int(seg["category_id"]) % len(_STUFF_PALETTE)]
    return colors


def _interior_point(mask: np.ndarray) -> tuple[int, int]:
    """The ``(x, y)`` pixel of ``mask`` farthest from its border: where a label reads best."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return int(x), int(y)


def draw_panoptic(
    image_bgr: np.ndarray,
    result: PanopticResult,
    class_names: Sequence[str] = (),
    stuff_names: Sequence[str] = (),
    alpha: float = 0.5,
) -> np.ndarray:
    """A copy of ``image_bgr`` with every panoptic segment tinted, outlined and labelled."""
    out = image_bgr.copy()
    seg = result.panoptic_seg
    if not result.segments_info:
        return out
    colors = _segment_colors(result)
    painted = seg > 0
    tint = colors[np.where(painted, seg, 0)]
    out[painted] = (out[painted] * (1 - alpha) + tint[painted] * alpha).astype(np.uint8)
    edges = np.zeros(seg.shape, bool)
    edges[:, 1:] |= seg[:, 1:] != seg[:, :-1]
    edges[1:, :] |= seg[1:, :] != seg[:-1, :]
    out[edges] = (255, 255, 255)
    for info in result.segments_info:
        mask = seg == info["id"]
        if not mask.any():
            continue
        cat = int(info["category_id"])
        names = class_names if info["isthing"] else stuff_names
        text = names[cat] if cat < len(names) else str(cat)
        if info["isthing"]:
            text += f" {info['score']:.0%}"
        x, y = _interior_point(mask)
        color = colors[info["id"]]
        _label(out, text, (x, y), (int(color[0]), int(color[1]), int(color[2])))
    return out
