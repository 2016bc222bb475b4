"""Detectron2's test-time ``ResizeShortestEdge`` and ``detector_postprocess``, in numpy/PIL."""

from __future__ import annotations

import numpy as np
from PIL import Image


def get_output_shape(old_h: int, old_w: int, short_edge: int, max_size: int) -> tuple[int, int]:
    """``(new_h, new_w)``: short edge at ``short_edge``, long edge at most ``max_size``."""
    size = float(short_edge)
    scale = size / min(old_h, old_w)
    if old_h < old_w:
        new_h, new_w = size, scale * old_w
    else:
        new_h, new_w = scale * old_h, size
    if max(new_h, new_w) > max_size:
        scale = max_size * 1.0 / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_shortest_edge(image: np.ndarray, short_edge: int, max_size: int) -> np.ndarray:
    """``(H, W, C)`` uint8 -> resized uint8, with PIL's bilinear filter as Detectron2 uses."""
    h, w = image.shape[:2]
    new_h, new_w = get_output_shape(h, w, short_edge, max_size)
    if (new_h, new_w) == (h, w):
        return image
    resized = Image.fromarray(np.ascontiguousarray(image)).resize((new_w, new_h), Image.BILINEAR)
    return np.asarray(resized)


def to_network_input(image_bgr: np.ndarray, input_format: str, short_edge: int,
                     max_size: int) -> np.ndarray:
    """BGR ``(H, W, 3)`` uint8 -> ``(1, 3, h, w)`` float32 in the model's channel order."""
    img = image_bgr[:, :, ::-1] if input_format == "RGB" else image_bgr
    img = resize_shortest_edge(img, short_edge, max_size)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)


def rescale_boxes(boxes: np.ndarray, net_hw: tuple[int, int],
                  out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``detector_postprocess`` for boxes: scale, clip; returns (boxes, keep mask of non-empty)."""
    scale_x = np.float32(out_hw[1] / net_hw[1])
    scale_y = np.float32(out_hw[0] / net_hw[0])
    out = boxes.astype(np.float32, copy=True)
    out[:, 0::2] *= scale_x
    out[:, 1::2] *= scale_y
    out[:, 0::2] = np.clip(out[:, 0::2], 0, out_hw[1])
    out[:, 1::2] = np.clip(out[:, 1::2], 0, out_hw[0])
    keep = (out[:, 2] - out[:, 0] > 0) & (out[:, 3] - out[:, 1] > 0)
    return out, keep
