"""Keypoint decoding: torch's bicubic resize along one axis, argmax, offsets and scores.

The Detectron2 fixtures test the whole decoding (tests/export_tools/parity); here its pieces are
checked against values torch itself produced and against a direct float64 evaluation.
"""

from __future__ import annotations

import numpy as np
import pytest

from daemon.inference import keypoints as kp
from daemon.inference.keypoints import bicubic_taps, heatmaps_to_keypoints, rescale_keypoints


def _resize_1d(x: np.ndarray, out: int) -> np.ndarray:
    taps, weights = bicubic_taps(len(x), out)
    return (x[taps] * weights).sum(axis=1)


def test_bicubic_matches_torch_values() -> None:
    """``F.interpolate([1, 5, 2], size=n, mode="bicubic", align_corners=False)`` (torch 2.x)."""
    x = np.array([1.0, 5.0, 2.0], np.float32)
    up = [0.56268310546875, 1.523324728012085, 3.635568380355835, 5.0, 4.160349369049072,
          2.415451765060425, 1.6720118522644043]
    np.testing.assert_allclose(_resize_1d(x, 7), up, rtol=0, atol=2e-6)
    np.testing.assert_allclose(_resize_1d(x, 2), [2.01171875, 2.8203125], rtol=0, atol=2e-6)


@pytest.mark.parametrize(("n_in", "n_out"), [(56, 56), (56, 13), (56, 131), (5, 1), (1, 9)])
def test_bicubic_weights_sum_to_one_and_same_size_is_identity(n_in: int, n_out: int) -> None:
    taps, weights = bicubic_taps(n_in, n_out)
    assert taps.shape == weights.shape == (n_out, 4)
    assert taps.min() >= 0 and taps.max() < n_in
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    if n_in == n_out:
        x = np.random.default_rng(0).normal(size=n_in).astype(np.float32)
        np.testing.assert_array_equal(_resize_1d(x, n_out), x)


def _keys(d: np.ndarray, a: float = -0.75) -> np.ndarray:
    """The cubic convolution kernel written from its definition (float64)."""
    d = np.abs(d)
    near = (a + 2) * d**3 - (a + 3) * d**2 + 1
    far = a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _dense_bicubic(n_in: int, n_out: int) -> np.ndarray:
    mat = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = (i + 0.5) * n_in / n_out - 0.5
        base = int(np.floor(src))
        for j in range(base - 1, base + 3):
            mat[i, min(max(j, 0), n_in - 1)] += _keys(src - j)
    return mat


def _reference_keypoints(maps: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Detectron2's decoding in float64, for one ROI ``(K, S, S)``."""
    w, h = max(box[2] - box[0], 1.0), max(box[3] - box[1], 1.0)
    wc, hc = int(np.ceil(w)), int(np.ceil(h))
    resized = np.einsum("ys,ksx,wx->kyw", _dense_bicubic(maps.shape[1], hc), maps,
                        _dense_bicubic(maps.shape[2], wc))
    out = []
    for k in range(maps.shape[0]):
        y, x = np.unravel_index(resized[k].argmax(), resized[k].shape)
        peak = resized[k, y, x]
        score = 1.0 / np.exp(maps[k] - peak).sum()
        out.append([(x + 0.5) * w / wc + box[0], (y + 0.5) * h / hc + box[1], score])
    return np.array(out)


def test_decoding_matches_a_float64_evaluation() -> None:
    rng = np.random.default_rng(1)
    heatmaps = rng.normal(0, 3, size=(6, 4, 56, 56)).astype(np.float32)
    boxes = np.array([[10, 20, 60, 90], [0, 0, 3.5, 2.2], [5.5, 7.25, 305.1, 99.9],
                      [100, 100, 100.4, 100.2], [1, 2, 57, 58], [20, 30, 21, 200]], np.float32)
    ours = heatmaps_to_keypoints(heatmaps, boxes)
    for i in range(len(boxes)):
        ref = _reference_keypoints(heatmaps[i].astype(np.float64), boxes[i].astype(np.float64))
        np.testing.assert_allclose(ours[i, :, :2], ref[:, :2], rtol=0, atol=1e-3)
        np.testing.assert_allclose(ours[i, :, 2], ref[:, 2], rtol=1e-4)


def _full_resize_argmax(maps: np.ndarray, out_h: int, out_w: int) -> tuple[np.ndarray, ...]:
    """Every output row computed (no pruning), then a row-major argmax."""
    cols = kp._resize_columns(maps, out_w)
    taps, weights = bicubic_taps(maps.shape[1], out_h)
    k = maps.shape[0]
    full = np.stack([kp._rows(cols, np.full(out_h, i), np.arange(out_h), taps, weights)
                     for i in range(k)])
    flat = full.reshape(k, -1)
    pos = flat.argmax(axis=1)
    return pos, flat[np.arange(k), pos]


@pytest.mark.parametrize("prune_from", [0, 10**9])  # always prune rows / never
@pytest.mark.parametrize("kind", ["peaked", "noise", "flat", "plateau"])
def test_argmax_search_equals_the_full_resize(kind: str, prune_from: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kp, "_PRUNE_MIN_PIXELS", prune_from)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:56, 0:56]
    maps = np.stack([-((yy - cy) ** 2 + (xx - cx) ** 2) / 30.0 + rng.normal(0, 0.05, (56, 56))
                     for cy, cx in rng.uniform(0, 56, (5, 2))]).astype(np.float32)
    if kind == "noise":
        maps = rng.normal(size=(5, 56, 56)).astype(np.float32)
    elif kind == "flat":
        maps = np.full((5, 56, 56), -2.5, np.float32)
    elif kind == "plateau":
        maps = np.zeros((5, 56, 56), np.float32)
        maps[:, 10:30, 5:50] = 4.0  # many equal maxima: the first one wins
    for out_h, out_w in [(13, 200), (400, 31), (56, 56), (1, 1), (97, 143)]:
        pos, val = kp._resized_argmax(maps, out_h, out_w)
        ref_pos, ref_val = _full_resize_argmax(maps, out_h, out_w)
        np.testing.assert_array_equal(pos, ref_pos)
        np.testing.assert_array_equal(val, ref_val)


def test_row_bands_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    heatmaps = rng.normal(size=(3, 5, 56, 56)).astype(np.float32)
    boxes = np.array([[0, 0, 200, 150], [3, 4, 50, 300], [10, 10, 40, 40]], np.float32)
    whole = heatmaps_to_keypoints(heatmaps, boxes)
    monkeypatch.setattr(kp, "_BAND_ELEMENTS", 7)
    np.testing.assert_array_equal(heatmaps_to_keypoints(heatmaps, boxes), whole)


def test_ties_take_the_first_pixel_and_score_normalises_over_the_heatmap() -> None:
    flat = np.full((1, 2, 8, 8), 3.0, np.float32)
    out = heatmaps_to_keypoints(flat, np.array([[10, 20, 14, 22]], np.float32))
    np.testing.assert_allclose(out[0, :, 0], 10.5)  # first column: 0.5 * (4 / 4) + 10
    np.testing.assert_allclose(out[0, :, 1], 20.5)
    np.testing.assert_allclose(out[0, :, 2], 1 / 64, rtol=1e-5)


def test_empty_input_and_rescale() -> None:
    empty = heatmaps_to_keypoints(np.zeros((0, 17, 56, 56), np.float32), np.zeros((0, 4)))
    assert empty.shape == (0, 17, 3)
    pts = np.array([[[10.0, 20.0, 0.7]]], np.float32)
    scaled = rescale_keypoints(pts, (100, 200), (50, 400))
    np.testing.assert_allclose(scaled[0, 0], [20.0, 10.0, 0.7])
    assert pts[0, 0, 0] == 10.0  # input untouched
