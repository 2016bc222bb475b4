"""Demo drawing: one tag per object (class-agnostic suppression), a display score threshold,
labels that do not cover each other, masks at low opacity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from daemon.inference.instances import Instances
from daemon.visualization import draw_instances
from daemon.visualization.draw import color_for
from daemon.visualization.layout import (
    DISPLAY_MIN_SCORE,
    DISPLAY_SUPPRESS_IOU,
    box_iou,
    one_per_object,
    place_labels,
)
from tests.conftest import require_fixtures


def _overlap(a, b) -> bool:  # noqa: ANN001
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_overlapping_detections_of_different_classes_are_one_object() -> None:
    boxes = np.array([[10, 10, 50, 50], [12, 11, 52, 49], [100, 100, 140, 140]], np.float32)
    scores = np.array([0.7, 0.9, 0.8], np.float32)
    assert one_per_object(boxes, scores, 0.5).tolist() == [1, 2]  # best of the pair, then 2
    assert one_per_object(boxes, scores, None).tolist() == [1, 2, 0]  # all, best first
    assert one_per_object(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_box_iou() -> None:
    iou = box_iou(np.array([0, 0, 10, 10.0]), np.array([[0, 0, 10, 10], [5, 0, 15, 10],
                                                         [20, 20, 30, 30], [0, 0, 0, 0.0]]))
    assert iou.tolist() == pytest.approx([1.0, 50 / 150, 0.0, 0.0])


def test_labels_of_boxes_with_the_same_corner_do_not_cover_each_other() -> None:
    boxes = np.array([[40, 40, 140, 140], [40, 40, 120, 150], [42, 38, 130, 100]], np.float32)
    rects = place_labels(boxes, [(60, 14)] * 3, (240, 320))
    for a, b in itertools.combinations(rects, 2):
        assert not _overlap(a, b), rects
    assert rects[0] == (40, 26, 100, 40)  # the best detection's label sits above its box


def test_labels_stay_inside_the_image() -> None:
    rects = place_labels(np.array([[300, 0, 319, 20], [-5, 230, 10, 239]], np.float32),
                         [(60, 14), (60, 14)], (240, 320))
    for x0, y0, x1, y1 in rects:
        assert 0 <= x0 and x1 <= 320 and 0 <= y0 and y1 <= 240


def test_draw_shows_one_tag_and_a_light_mask_per_object() -> None:
    image = np.full((120, 160, 3), 100, np.uint8)
    mask = np.zeros((2, 120, 160), bool)
    mask[:, 40:80, 50:90] = True
    inst = Instances((120, 160), np.array([[50, 40, 90, 80], [51, 41, 89, 79]], np.float32),
                     np.array([0.9, 0.8], np.float32), np.array([0, 1]), pred_masks=mask)
    out = draw_instances(image, inst, ["square", "circle"])
    shown, hidden = np.array(color_for(0)), np.array(color_for(1))
    assert (out == shown).all(axis=2).any()  # the best detection's box and tag
    assert not (out == hidden).all(axis=2).any()  # the other class's tag is not drawn
    inside = out[60, 70].astype(float)  # a mask pixel away from box and label
    assert inside == pytest.approx(0.7 * 100 + 0.3 * shown, abs=1.0)
    both = draw_instances(image, inst, ["square", "circle"], suppress_iou=None)
    assert (both == hidden).all(axis=2).any()


@pytest.mark.parametrize("index", range(5))
def test_demo_images_get_one_tag_per_shape(index: int) -> None:
    """On the demo model's real Detectron2 outputs: no two drawn detections overlap and no two
    labels cover each other; far fewer tags than the 100-instance cap."""
    expected = np.load(require_fixtures() / "mask_rcnn_R_50_FPN_demo" / f"expected_{index}.npz")
    keep = expected["scores"] >= DISPLAY_MIN_SCORE
    boxes, scores = expected["boxes"][keep], expected["scores"][keep]
    drawn = one_per_object(boxes, scores, DISPLAY_SUPPRESS_IOU)
    assert len(drawn) <= 6  # each scene has at most 5 shapes; the raw output has up to 100
    for a, b in itertools.combinations(drawn, 2):
        assert box_iou(boxes[a], boxes[b][None])[0] <= DISPLAY_SUPPRESS_IOU
    hw = expected["masks"].shape[1:]
    rects = place_labels(boxes[drawn], [(70, 16)] * len(drawn), hw)
    for a, b in itertools.combinations(rects, 2):
        assert not _overlap(a, b), rects
