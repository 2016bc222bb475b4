"""Panoptic combination: Detectron2's rules on hand-made cases and on the fixtures' own outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from daemon.inference.masks import paste_mask
from daemon.inference.panoptic import PanopticSettings, combine_panoptic, full_masks
from tests.conftest import require_fixtures

SETTINGS = PanopticSettings(overlap_thresh=0.5, stuff_area_limit=4,
                            instances_confidence_thresh=0.5)


def _rect(hw: tuple[int, int], y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros(hw, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_rules_on_a_small_scene() -> None:
    hw = (10, 10)
    masks = np.stack([
        _rect(hw, 0, 4, 0, 4),   # 0: first placed (highest score)
        _rect(hw, 2, 6, 2, 6),   # 1: overlaps 4 of 16 pixels -> kept on its free pixels
        _rect(hw, 0, 4, 0, 3),   # 2: fully covered by 0 -> dropped
        np.zeros(hw, bool),      # 3: empty mask -> skipped
        _rect(hw, 8, 10, 8, 10),  # 4: score below the confidence threshold -> stops the loop
    ])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.4], np.float32)
    classes = np.array([2, 1, 0, 0, 1])
    labels = np.zeros(hw, np.int32)
    labels[6:, :] = 1   # 40 pixels, 4 of them then relabelled 2 -> 36, all free
    labels[:, 9] = 2    # 10 pixels, all free
    labels[0, 7] = 3    # 1 pixel -> below the stuff area limit
    labels[5, 5] = 1    # under instance 1: not free, so not counted
    result = combine_panoptic(scores, classes, full_masks(masks), labels, SETTINGS)
    things = [(s["id"], s["category_id"], s["instance_id"]) for s in result.segments_info
              if s["isthing"]]
    assert things == [(1, 2, 0), (2, 1, 1)]
    assert (result.panoptic_seg[0:4, 0:4] == 1).all()
    assert (result.panoptic_seg == 2).sum() == 12 and result.panoptic_seg[5, 5] == 2
    stuff = [(s["id"], s["category_id"], s["area"]) for s in result.segments_info
             if not s["isthing"]]
    assert stuff == [(3, 1, 36), (4, 2, 10)]
    assert result.panoptic_seg[0, 7] == 0  # void


def test_box_region_pasting_equals_full_masks() -> None:
    rng = np.random.default_rng(0)
    hw = (60, 80)
    probs = rng.random((6, 28, 28)).astype(np.float32)
    boxes = np.array([[5, 5, 40, 30], [20, 10, 70, 50], [0, 0, 80, 60], [30, 30, 35, 33],
                      [10, 40, 60, 59.5], [50, 1, 79, 20]], np.float32)
    scores = np.array([0.95, 0.9, 0.8, 0.75, 0.7, 0.3], np.float32)
    classes = np.arange(6) % 3
    labels = rng.integers(0, 3, hw).astype(np.int32)
    full = np.stack([np.zeros(hw, bool) for _ in range(6)])
    for i in range(6):
        region, where = paste_mask(probs[i], boxes[i], hw)
        full[i][where] = region
    lazy = combine_panoptic(scores, classes, lambda i: paste_mask(probs[i], boxes[i], hw),
                            labels, SETTINGS)
    eager = combine_panoptic(scores, classes, full_masks(full), labels, SETTINGS)
    np.testing.assert_array_equal(lazy.panoptic_seg, eager.panoptic_seg)
    assert lazy.segments_info == eager.segments_info


def test_reproduces_detectron2_from_its_own_masks_and_labels() -> None:
    """The fixtures' pasted masks and semantic argmax give exactly their panoptic_seg."""
    root = require_fixtures() / "panoptic_fpn_R_50"
    manifest = json.loads((root / "manifest.json").read_text())
    for i, image in enumerate(manifest["images"]):
        e = np.load(root / f"expected_{i}.npz")
        result = combine_panoptic(e["scores"], e["classes"], full_masks(e["masks"]),
                                  e["sem_seg_argmax"], PanopticSettings())
        np.testing.assert_array_equal(result.panoptic_seg, e["panoptic_seg"])
        assert result.segments_info == image["segments_info"]


def test_the_zoo_panoptic_mismatch_is_an_order_tie_of_two_scores() -> None:
    """``panoptic_tie_r50.npz`` (``make_panoptic_tie_data.py``, real Detectron2, the zoo sweep's
    ``panoptic_fpn_R_50_1x`` with synthetic weights): our combination of Detectron2's own
    instances and labels gives its ``panoptic_seg`` exactly. Segment ids are given in score
    order, and two instances have scores 2.4e-7 apart (float noise between ONNX Runtime and
    PyTorch): taken in the other order, as our scores put them, they swap ids (and the few
    pixels they share change owner), 4 % of the image (the sweep measured 95.7 % agreement).
    Both sides then hold the same segments with the same pixels under swapped ids."""
    with np.load(Path(__file__).resolve().parent / "panoptic_tie_r50.npz") as data:
        d = dict(data)
    masks = np.unpackbits(d["masks"], axis=-1, count=int(d["width"])).astype(bool)
    settings = PanopticSettings(float(d["overlap_thresh"]), int(d["stuff_area_limit"]),
                                float(d["instances_confidence_thresh"]))
    scores = d["scores"]
    same = combine_panoptic(scores, d["classes"], full_masks(masks), d["sem_labels"], settings)
    np.testing.assert_array_equal(same.panoptic_seg, d["panoptic_seg"])
    order = np.argsort(-scores, kind="stable")
    gaps = [(float(scores[a] - scores[b]), int(a), int(b)) for a, b in zip(order, order[1:])
            if scores[b] >= settings.instances_confidence_thresh]
    gap, a, b = min(gaps)
    assert gap < 3e-7
    swapped = scores.copy()
    swapped[a], swapped[b] = scores[b], scores[a]
    other = combine_panoptic(swapped, d["classes"], full_masks(masks), d["sem_labels"], settings)
    agreement = float((other.panoptic_seg == d["panoptic_seg"]).mean())
    assert agreement < 0.999
    ids = {i["instance_id"]: i["id"] for i in same.segments_info if i["isthing"]}
    swapped_ids = {i["instance_id"]: i["id"] for i in other.segments_info if i["isthing"]}
    assert (swapped_ids[a], swapped_ids[b]) == (ids[b], ids[a])
