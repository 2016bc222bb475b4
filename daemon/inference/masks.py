"""Pasting ``M x M`` mask probabilities into the image, as Detectron2's ``paste_masks_in_image``.

Detectron2 samples each mask with ``grid_sample`` (bilinear, zero padding, ``align_corners=False``)
at the centres of the image pixels inside the box's integer bounds, then thresholds at 0.5. Bilinear
sampling on a pixel grid is separable, so each mask is pasted as ``Wy @ mask @ Wx.T`` with two small
interpolation matrices: memory per instance is bounded by its box region, never ``N x H x W``
floats.
"""

from __future__ import annotations

import numpy as np


def _interp_matrix(coords: np.ndarray, size: int) -> np.ndarray:
    """Bilinear weights ``(n, size)`` at positions ``coords`` (mask pixels), zero padded."""
    i0 = np.floor(coords)
    w1 = (coords - i0).astype(np.float32)
    w0 = ((i0 + 1) - coords).astype(np.float32)
    i0 = i0.astype(np.int64)
    mat = np.zeros((coords.shape[0], size), np.float32)
    rows = np.arange(coords.shape[0])
    for idx, weight in ((i0, w0), (i0 + 1, w1)):
        valid = (idx >= 0) & (idx < size)
        mat[rows[valid], idx[valid]] += weight[valid]
    return mat


def _sample_positions(start: int, stop: int, lo: np.float32, hi: np.float32,
                      size: int) -> np.ndarray:
    """Mask-space coordinates of pixel centres ``start..stop-1`` for a box edge pair (float32)."""
    centres = np.arange(start, stop, dtype=np.float32) + np.float32(0.5)
    norm = (centres - lo) / (hi - lo) * np.float32(2) - np.float32(1)
    return ((norm + np.float32(1)) * np.float32(size) - np.float32(1)) / np.float32(2)


def paste_mask(probs: np.ndarray, box: np.ndarray, image_hw: tuple[int, int],
               threshold: float = 0.5) -> tuple[np.ndarray, tuple[slice, slice]]:
    """One mask: returns the thresholded region and where it goes in the image."""
    img_h, img_w = image_hw
    box = box.astype(np.float32)
    x0_int = int(max(np.floor(box[0]) - 1, 0))
    y0_int = int(max(np.floor(box[1]) - 1, 0))
    x1_int = int(min(np.ceil(box[2]) + 1, img_w))
    y1_int = int(min(np.ceil(box[3]) + 1, img_h))
    size = probs.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ys = _sample_positions(y0_int, y1_int, box[1], box[3], size)
        xs = _sample_positions(x0_int, x1_int, box[0], box[2], size)
    wy = _interp_matrix(np.nan_to_num(ys, nan=-2.0), size)
    wx = _interp_matrix(np.nan_to_num(xs, nan=-2.0), size)
    region = wy @ probs.astype(np.float32) @ wx.T
    return region >= threshold, (slice(y0_int, y1_int), slice(x0_int, x1_int))


def paste_masks(probs: np.ndarray, boxes: np.ndarray, image_hw: tuple[int, int],
                threshold: float = 0.5) -> np.ndarray:
    """``probs (N, M, M)`` in ``boxes (N, 4)`` (image pixels) -> ``(N, H, W)`` bool masks."""
    out = np.zeros((probs.shape[0], *image_hw), dtype=bool)
    for i in range(probs.shape[0]):
        region, where = paste_mask(probs[i], boxes[i], image_hw, threshold)
        out[(i, *where)] = region
    return out
