"""Semantic labels: the composed upsample-crop-resize and the banded argmax."""

from __future__ import annotations

import numpy as np
import pytest

from daemon.inference import semantic
from daemon.inference.semantic import bilinear_matrix, composed_axis, sem_seg_labels


def test_bilinear_matches_torch_values() -> None:
    """``F.interpolate([1, 5, 2], mode="bilinear", align_corners=False)`` (torch 2.x)."""
    x = np.array([1.0, 5.0, 2.0])
    by_size = [1.0, 1.5714285373687744, 3.2857143878936768, 5.0, 3.7142856121063232,
               2.4285712242126465, 2.0]
    by_scale = [1.0, 1.0, 1.5, 2.5, 3.5, 4.5, 4.625, 3.875, 3.125, 2.375, 2.0, 2.0]
    np.testing.assert_allclose(bilinear_matrix(3, 7) @ x, by_size, atol=1e-6)
    np.testing.assert_allclose(bilinear_matrix(3, 12, scale=0.25) @ x, by_scale, atol=1e-6)
    np.testing.assert_allclose(bilinear_matrix(3, 2) @ x, [2.0, 2.75], atol=1e-6)


@pytest.mark.parametrize(("low", "net", "out"), [(8, 29, 29), (8, 32, 17), (26, 101, 333),
                                                 (1, 3, 5)])
def test_composed_axis_is_the_product_of_the_three_steps(low: int, net: int, out: int) -> None:
    up = bilinear_matrix(low, low * 4, scale=0.25)
    expected = bilinear_matrix(net, out) @ up[:net]
    np.testing.assert_allclose(composed_axis(low, 4, net, out), expected, atol=1e-12)


def _naive_labels(logits: np.ndarray, net_hw: tuple[int, int],
                  out_hw: tuple[int, int]) -> np.ndarray:
    """Full-resolution logits, step by step as Detectron2 computes them, then argmax."""
    c, h, w = logits.shape
    up = np.einsum("yh,chw,xw->cyx", bilinear_matrix(h, 4 * h, 0.25), logits,
                   bilinear_matrix(w, 4 * w, 0.25))
    crop = up[:, :net_hw[0], :net_hw[1]]
    full = np.einsum("yh,chw,xw->cyx", bilinear_matrix(net_hw[0], out_hw[0]), crop,
                     bilinear_matrix(net_hw[1], out_hw[1]))
    return full.argmax(axis=0)


@pytest.mark.parametrize(("net_hw", "out_hw"), [((96, 120), (120, 150)), ((100, 60), (40, 25)),
                                                ((32, 32), (8, 8))])
def test_labels_equal_the_step_by_step_computation(net_hw, out_hw,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    low = (-(-net_hw[0] // 32) * 8, -(-net_hw[1] // 32) * 8)  # padded to 32, at stride 4
    logits = rng.normal(0, 2, size=(5, *low)).astype(np.float32)
    expected = _naive_labels(logits.astype(np.float64), net_hw, out_hw)
    labels = sem_seg_labels(logits[None], 4, net_hw, out_hw)
    assert labels.shape == out_hw and labels.dtype == np.int32
    assert (labels == expected).mean() >= 0.999
    monkeypatch.setattr(semantic, "_BAND_ELEMENTS", 1)  # one output row per band
    np.testing.assert_array_equal(sem_seg_labels(logits, 4, net_hw, out_hw), labels)
