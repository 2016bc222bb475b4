"""Semantic segmentation logits -> per-pixel labels at the original image resolution.

Detectron2 upsamples ``SemSegFPNHead``'s logits by the common stride (bilinear,
``align_corners=False``), crops them to the network input size (``sem_seg_postprocess``), resizes
them bilinearly to the original image and takes the argmax over classes. Each of these steps is
linear along each axis, so the three compose into one small interpolation per axis (at most a few
taps per output pixel). The runtime applies that composed map to the low-resolution logits in
bands of output rows: the ``C x H x W`` full-resolution logits never exist in memory.
"""

from __future__ import annotations

import numpy as np

from daemon.inference.panoptic import PanopticResult

_BAND_ELEMENTS = 1 << 21  # float32 values per band of (classes x rows x width)


def bilinear_taps(in_size: int, out_size: int,
                  scale: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's bilinear resize along one axis: lower and upper source index and upper weight.

    ``align_corners=False``: source ``= scale * (i + 0.5) - 0.5``, clamped at 0; the upper tap is
    clamped to the last index. ``scale`` defaults to ``in_size / out_size`` (a ``size=`` call);
    a ``scale_factor=f`` call uses ``1 / f``. Returns ``(lo, hi, frac)``, each ``(out_size,)``.
    """
    step = in_size / out_size if scale is None else scale
    src = np.maximum(step * (np.arange(out_size) + 0.5) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    return lo, hi, src - lo


def bilinear_matrix(in_size: int, out_size: int, scale: float | None = None) -> np.ndarray:
    """The same resize as a dense ``(out_size, in_size)`` float64 matrix."""
    lo, hi, frac = bilinear_taps(in_size, out_size, scale)
    mat = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    np.add.at(mat, (rows, lo), 1.0 - frac)
    np.add.at(mat, (rows, hi), frac)
    return mat


def composed_axis(low_size: int, stride: int, net_size: int, out_size: int) -> np.ndarray:
    """``(out_size, low_size)``: upsample by ``stride``, keep the first ``net_size``, resize."""
    up = bilinear_matrix(low_size, low_size * stride, scale=1.0 / stride)[:net_size]
    lo, hi, frac = bilinear_taps(net_size, out_size)
    return up[lo] * (1.0 - frac)[:, None] + up[hi] * frac[:, None]


def _taps(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sparse rows of ``mat (O, I)``: indices ``(O, T)`` int64 and weights ``(O, T)`` float32."""
    nonzero = mat != 0
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), 0)
    last = mat.shape[1] - 1 - nonzero[:, ::-1].argmax(axis=1)
    width = int(max(1, (last - first).max() + 1))
    idx = first[:, None] + np.arange(width)[None, :]
    padded = np.concatenate([mat, np.zeros((mat.shape[0], width), mat.dtype)], axis=1)
    weights = np.take_along_axis(padded, idx, axis=1).astype(np.float32)
    return np.minimum(idx, mat.shape[1] - 1), weights


def _apply_rows(x: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x (C, I, W)`` -> ``(C, len(idx), W)`` along axis 1."""
    out = x[:, idx[:, 0], :] * w[:, 0][None, :, None]
    for t in range(1, idx.shape[1]):
        out += x[:, idx[:, t], :] * w[:, t][None, :, None]
    return out


def _apply_cols(x: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``x (C, B, I)`` -> ``(C, B, len(idx))`` along axis 2."""
    out = x[:, :, idx[:, 0]] * w[:, 0]
    for t in range(1, idx.shape[1]):
        out += x[:, :, idx[:, t]] * w[:, t]
    return out


def sem_seg_labels(logits: np.ndarray, stride: int, net_hw: tuple[int, int],
                   out_hw: tuple[int, int]) -> np.ndarray:
    """Labels ``(H, W)`` int32 at ``out_hw`` from the graph's ``(C, h, w)`` (or ``(1, C, h, w)``)
    logits at ``1 / stride`` of the padded network input of size ``net_hw``."""
    x = np.asarray(logits, np.float32)
    x = x[0] if x.ndim == 4 else x
    c, low_h, low_w = x.shape
    out_h, out_w = out_hw
    y_idx, y_w = _taps(composed_axis(low_h, stride, net_hw[0], out_h))
    x_idx, x_w = _taps(composed_axis(low_w, stride, net_hw[1], out_w))
    labels = np.empty((out_h, out_w), np.int32)
    band = max(1, _BAND_ELEMENTS // max(1, c * max(out_w, low_w)))
    for y0 in range(0, out_h, band):
        rows = slice(y0, min(out_h, y0 + band))
        block = _apply_cols(_apply_rows(x, y_idx[rows], y_w[rows]), x_idx, x_w)
        labels[rows] = block.argmax(axis=0)
    return labels


def semantic_segments(labels: np.ndarray) -> PanopticResult:
    """Semantic labels ``(H, W)`` as stuff-only panoptic segments (``id`` = label + 1), so that
    the panoptic drawing and JSON records serve SemanticSegmentor models too."""
    present, areas = np.unique(labels, return_counts=True)
    info = [{"id": int(lab) + 1, "isthing": False, "category_id": int(lab), "area": int(area)}
            for lab, area in zip(present, areas, strict=True)]
    return PanopticResult((labels + 1).astype(np.int32), info, labels)
