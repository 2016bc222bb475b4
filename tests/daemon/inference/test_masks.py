"""Mask pasting against Detectron2's own, and the zoo sweep's mask mismatches proven ties.

Made by ``make_mask_tie_data.py`` with real Detectron2, from the zoo sweep (random calibrated
weights, so mask logits near 0 and probabilities near 0.5):

- ``mask_tie_r101.npz``: ``COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x`` gave one instance
  with pasted-mask IoU 0.833, a 5-pixel mask (Detectron2's) against 6;
- ``mask_tie_gn.npz``: ``Misc/scratch_mask_rcnn_R_50_FPN_9x_gn`` gave one with IoU 0.9891, a
  91-pixel mask (Detectron2's) against 92 (its three other differing instances: IoU >= 0.9993).

Each file holds that instance as Detectron2 computed it: its 28x28 probabilities, its box at
image scale, Detectron2's soft (pre-threshold) pasted mask and its thresholded mask.

- ``mask_tie_thin_box.npz``: ``projects/ViTDet/configs/LVIS/cascade_mask_rcnn_vitdet_h_100ep.py``
  gave one instance with IoU 0: a box 0.5 px tall on the image's bottom edge, whose mask is one
  pixel in Detectron2's output and none in ours. It holds our 28x28 probabilities, Detectron2's
  box and ours (one float32 ulp apart in y): Detectron2's own ``paste_masks_in_image`` of these
  probabilities gives that pixel with its box (soft value 0.50019) and none with ours (0.49968).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from daemon.inference.masks import paste_mask

HERE = Path(__file__).resolve().parent
# file, the largest probability change that flips a pixel of it (float noise: ONNX Runtime vs
# PyTorch differ by ~1e-7-1e-5 in mask probabilities, the parity tolerance is 1e-4), and the
# size of Detectron2's mask
TIES = {"r101": ("mask_tie_r101.npz", 1e-6, 5), "gn": ("mask_tie_gn.npz", 1e-5, 91)}


@pytest.fixture(scope="module", params=sorted(TIES))
def tie(request) -> dict[str, np.ndarray]:
    name, eps, size = TIES[request.param]
    with np.load(HERE / name) as data:
        return {**data, "eps": eps, "size": size}


def _paste(probs: np.ndarray, tie: dict[str, np.ndarray]) -> np.ndarray:
    hw = tuple(int(v) for v in tie["image_hw"])
    region, where = paste_mask(probs, tie["box"], hw)
    out = np.zeros(hw, bool)
    out[where] = region
    return out


def test_pasting_detectron2s_own_probabilities_gives_its_mask(tie) -> None:
    """The pasting is exact: from Detectron2's probabilities we get Detectron2's mask."""
    np.testing.assert_array_equal(_paste(tie["probs"], tie), tie["mask"])


def test_the_mismatch_is_a_threshold_tie_within_float_noise(tie) -> None:
    """A small mask with a pixel whose soft value sits on the 0.5 threshold: moving every
    probability by ``eps`` (float noise, far inside the 1e-4 probability tolerance) flips it, and
    so the IoU of two equally right masks falls under 0.99 (5/6 for r101, 90/91 for gn)."""
    mask, soft, eps = tie["mask"], tie["soft"], tie["eps"]
    assert mask.sum() == tie["size"]
    inside = soft > 0.25
    assert np.abs(soft[inside] - 0.5).min() < eps
    up, down = _paste(tie["probs"] + eps, tie), _paste(tie["probs"] - eps, tie)
    flipped = up != down
    assert flipped.any()
    assert np.abs(soft[flipped] - 0.5).max() < 2 * eps
    iou = (up & down).sum() / (up | down).sum()
    assert iou < 0.99


def test_a_thin_box_mask_turns_on_one_float32_ulp_of_the_box() -> None:
    """A 0.5 px tall box samples the mask's edge cells, where a 1.5e-5 px move of the box (one
    ulp at y = 240) moves the soft value by 5e-4: the pixel is on with Detectron2's box, off with
    ours, for the same probabilities and the same pasting. A tie of float noise, not of pasting."""
    with np.load(HERE / "mask_tie_thin_box.npz") as data:
        d = dict(data)
    hw = (int(d["image_hw"][0]), int(d["image_hw"][1]))
    ulp = np.spacing(np.abs(d["ref_box"]).astype(np.float32))
    assert np.all(np.abs(d["ref_box"] - d["our_box"]) <= ulp)
    assert d["ref_box"][3] - d["ref_box"][1] < 0.51

    def paste(box: np.ndarray) -> np.ndarray:
        region, where = paste_mask(d["probs"], box, hw)
        out = np.zeros(hw, bool)
        out[where] = region
        return out

    with_ref, with_ours = paste(d["ref_box"]), paste(d["our_box"])
    assert with_ref.sum() == 1 and with_ref[tuple(d["ref_pixel"])]
    assert with_ours.sum() == 0
