"""Keypoint heatmaps -> ``(x, y, score)``, as Detectron2's ``heatmaps_to_keypoints`` decodes them.

For each detection, the ``(K, S, S)`` heatmap logits are resized with bicubic interpolation
(``align_corners=False``, torch's A = -0.75 kernel, borders clamped) to the box's size rounded up;
the location of each keypoint's maximum, shifted to pixel centres (+0.5) and scaled back by
``size / ceil(size)``, is added to the box corner. The score is Detectron2's: the resized maximum
turned into a probability with a softmax normalised over the ``S x S`` heatmap.

The resize is separable: columns are interpolated for the whole heatmap; of the rows, only those
that can hold a keypoint's maximum are computed (in bands), so time and memory stay small even for
a box that covers a large image.
"""

from __future__ import annotations

import numpy as np

CUBIC_A = np.float32(-0.75)
_BAND_ELEMENTS = 1 << 20  # float32 values per row band of the resized heatmaps
_PRUNE_MIN_PIXELS = 64 * 64  # larger resized heatmaps skip the rows that cannot hold the max


def _cubic_near(x: np.ndarray) -> np.ndarray:
    """Kernel for ``|x| <= 1``."""
    a = CUBIC_A
    return ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + np.float32(1)


def _cubic_far(x: np.ndarray) -> np.ndarray:
    """Kernel for ``1 < |x| < 2``."""
    a = CUBIC_A
    return ((a * x - np.float32(5) * a) * x + np.float32(8) * a) * x - np.float32(4) * a


def bicubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``(out_size, 4)`` int64 and weights ``(out_size, 4)`` float32.

    ``F.interpolate(size=out_size, mode="bicubic", align_corners=False)`` along one axis; indices
    outside the input are clamped to its border, as torch does.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32)
    real = scale * (dst + np.float32(0.5)) - np.float32(0.5)
    index = np.minimum(np.floor(real).astype(np.int64), in_size - 1)
    t = np.clip(real - index.astype(np.float32), np.float32(0), np.float32(1))
    one = np.float32(1)
    weights = np.stack([_cubic_far(t + one), _cubic_near(t), _cubic_near(one - t),
                        _cubic_far((one - t) + one)], axis=1)
    taps = np.clip(index[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
    return taps, weights.astype(np.float32)


def _resize_columns(maps: np.ndarray, out_w: int) -> np.ndarray:
    """``(K, S, S)`` -> ``(K, S, out_w)``: the bicubic pass along x."""
    taps, weights = bicubic_taps(maps.shape[2], out_w)
    out = maps[:, :, taps[:, 0]] * weights[:, 0]
    for j in range(1, 4):
        out += maps[:, :, taps[:, j]] * weights[:, j]
    return out


def _rows(cols: np.ndarray, ks: np.ndarray, rows: np.ndarray, taps: np.ndarray,
          weights: np.ndarray) -> np.ndarray:
    """Output rows ``rows`` of keypoints ``ks`` (both ``(M,)``) -> ``(M, out_w)``: the bicubic
    pass along y, in the same order of operations for every row."""
    t, w = taps[rows], weights[rows]
    out = cols[ks, t[:, 0], :] * w[:, 0, None]
    for j in range(1, 4):
        out += cols[ks, t[:, j], :] * w[:, j, None]
    return out


def _row_upper_bounds(cols: np.ndarray, taps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(K, out_h)``: no value of an output row can exceed its bound (float64, with a margin
    for float32 rounding)."""
    hi = cols.max(axis=2).astype(np.float64)  # (K, S)
    lo = cols.min(axis=2).astype(np.float64)
    w = weights.astype(np.float64)  # (out_h, 4)
    bound = np.zeros((cols.shape[0], taps.shape[0]))
    for j in range(4):
        bound += np.where(w[:, j] > 0, w[:, j] * hi[:, taps[:, j]], w[:, j] * lo[:, taps[:, j]])
    scale = np.abs(cols).reshape(cols.shape[0], -1).max(axis=1).astype(np.float64)
    return bound + (1e-4 * scale + 1e-6)[:, None]


def _argmax_all_rows(cols: np.ndarray, taps: np.ndarray,
                     weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every output row computed, in bands; for small boxes this is the fastest."""
    k, out_h, out_w = cols.shape[0], taps.shape[0], cols.shape[2]
    best = np.full(k, -np.inf, np.float32)
    best_pos = np.zeros(k, np.int64)
    band = max(1, _BAND_ELEMENTS // max(1, k * out_w))
    for y0 in range(0, out_h, band):
        t, w = taps[y0:y0 + band], weights[y0:y0 + band]
        block = cols[:, t[:, 0], :] * w[:, 0][None, :, None]  # same operations as _rows
        for j in range(1, 4):
            block += cols[:, t[:, j], :] * w[:, j][None, :, None]
        flat = block.reshape(k, -1)
        pos = flat.argmax(axis=1)
        val = flat[np.arange(k), pos]
        better = val > best  # strictly: an earlier band keeps a tie
        best[better] = val[better]
        best_pos[better] = pos[better] + y0 * out_w
    return best_pos, best


def _resized_argmax(maps: np.ndarray, out_h: int, out_w: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat argmax ``(K,)`` and maximum ``(K,)`` of ``maps (K, S, S)`` resized to
    ``(out_h, out_w)``; ties go to the first position in row-major order, as ``torch.argmax``.

    For large outputs only rows that can hold the maximum are computed: each keypoint's most
    promising row gives a value the maximum reaches, and a row whose upper bound stays below it
    is skipped. Computed rows get exactly the values a full resize would give them.
    """
    k = maps.shape[0]
    cols = _resize_columns(maps, out_w)  # (K, S, out_w)
    taps, weights = bicubic_taps(maps.shape[1], out_h)
    if out_h * out_w <= _PRUNE_MIN_PIXELS or not np.isfinite(cols).all():
        return _argmax_all_rows(cols, taps, weights)
    upper = _row_upper_bounds(cols, taps, weights)
    first_rows = upper.argmax(axis=1)
    reached = _rows(cols, np.arange(k), first_rows, taps, weights).max(axis=1)
    cand_k, cand_r = np.nonzero(upper >= reached[:, None])  # sorted by keypoint, then row
    values = np.empty(cand_k.size, np.float32)
    cols_at = np.empty(cand_k.size, np.int64)
    chunk = max(1, _BAND_ELEMENTS // max(1, out_w))
    for c0 in range(0, cand_k.size, chunk):
        part = slice(c0, c0 + chunk)
        block = _rows(cols, cand_k[part], cand_r[part], taps, weights)
        cols_at[part] = block.argmax(axis=1)
        values[part] = block[np.arange(block.shape[0]), cols_at[part]]
    best = np.full(k, -np.inf, np.float32)
    np.maximum.at(best, cand_k, values)
    winners = np.flatnonzero(values == best[cand_k])
    _, first = np.unique(cand_k[winners], return_index=True)  # earliest row of each keypoint
    win = winners[first]
    return cand_r[win] * out_w + cols_at[win], values[win]


def heatmaps_to_keypoints(heatmaps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``heatmaps (N, K, S, S)`` logits in ``boxes (N, 4)`` -> ``(N, K, 3)`` (x, y, score).

    Coordinates are in the boxes' frame (network resolution for the graph's outputs).
    """
    n, k = heatmaps.shape[:2]
    out = np.zeros((n, k, 3), np.float32)
    boxes = np.asarray(boxes, np.float32)
    widths = np.maximum(boxes[:, 2] - boxes[:, 0], np.float32(1))
    heights = np.maximum(boxes[:, 3] - boxes[:, 1], np.float32(1))
    widths_ceil, heights_ceil = np.ceil(widths), np.ceil(heights)
    for i in range(n):
        maps = np.ascontiguousarray(heatmaps[i], dtype=np.float32)
        out_h, out_w = int(heights_ceil[i]), int(widths_ceil[i])
        pos, peak = _resized_argmax(maps, out_h, out_w)
        x_int = (pos % out_w).astype(np.float32)
        y_int = (pos // out_w).astype(np.float32)
        x = (x_int + np.float32(0.5)) * (widths[i] / widths_ceil[i])
        y = (y_int + np.float32(0.5)) * (heights[i] / heights_ceil[i])
        norm = np.exp(maps - peak[:, None, None]).sum(axis=(1, 2), dtype=np.float64)
        out[i, :, 0] = x + boxes[i, 0]
        out[i, :, 1] = y + boxes[i, 1]
        out[i, :, 2] = np.float32(1) / norm
    return out


def rescale_keypoints(keypoints: np.ndarray, net_hw: tuple[int, int],
                      out_hw: tuple[int, int]) -> np.ndarray:
    """``detector_postprocess`` for keypoints: scale x and y (scores unchanged)."""
    out = keypoints.astype(np.float32, copy=True)
    out[:, :, 0] *= np.float32(out_hw[1] / net_hw[1])
    out[:, :, 1] *= np.float32(out_hw[0] / net_hw[0])
    return out
