"""Parity reports between two sets of detections, built from Detectron2's fixture outputs."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from daemon.evaluation.parity import Thresholds, Tolerances, compare_image, compare_many
from daemon.inference.instances import Instances
from tests.daemon.evaluation.conftest import load_expected


@pytest.fixture
def mask_ref(fixtures):
    return load_expected(fixtures / "mask_rcnn_R_50_FPN" / "expected_0.npz")


def _permuted(inst, seed=0):
    order = np.random.default_rng(seed).permutation(len(inst))
    return inst[order]


def test_identical_sets_in_another_order_pass(mask_ref):
    res = compare_image("a.png", mask_ref, _permuted(mask_ref))
    assert res.passed, res.failures
    assert res.num_matched == len(mask_ref) == res.num_reference == res.num_ours
    assert res.box_max_abs_px == 0.0 and res.score_max_abs == 0.0 and res.mask_iou_min == 1.0


def test_box_score_and_mask_differences_fail(mask_ref):
    boxes = mask_ref.pred_boxes.copy()
    boxes[3, 2] += 0.5
    res = compare_image("a.png", mask_ref, replace(mask_ref, pred_boxes=boxes))
    assert not res.passed and res.box_max_abs_px == pytest.approx(0.5)
    assert any("box differs by 0.5px" in f for f in res.failures)

    scores = mask_ref.scores.copy()
    scores[0] += 1e-3
    res = compare_image("a.png", mask_ref, replace(mask_ref, scores=scores))
    assert res.score_max_abs == pytest.approx(1e-3, rel=1e-3)
    assert any("score differs" in f for f in res.failures)

    masks = mask_ref.pred_masks.copy()
    big = int(np.argmax(masks.sum(axis=(1, 2))))
    ys, xs = np.nonzero(masks[big])
    masks[big, ys[: len(ys) // 10], xs[: len(xs) // 10]] = False
    res = compare_image("a.png", mask_ref, replace(mask_ref, pred_masks=masks))
    assert res.mask_iou_min == pytest.approx(0.9, abs=0.02)
    assert any("mask IoU" in f for f in res.failures)


def test_missing_confident_instance_fails(mask_ref):
    res = compare_image("a.png", mask_ref, mask_ref[1:])
    assert not res.passed and res.num_matched == len(mask_ref) - 1
    assert res.unmatched_reference_scores == [pytest.approx(float(mask_ref.scores[0]))]
    assert any("missing" in f for f in res.failures)
    res = compare_image("a.png", mask_ref[1:], mask_ref)
    assert any("extra" in f for f in res.failures)


def test_instance_at_the_threshold_may_be_missing(mask_ref):
    scores = mask_ref.scores.copy()
    scores[-1] = 0.05 + 5e-5  # within the score tolerance of SCORE_THRESH_TEST
    ref = replace(mask_ref, scores=scores)
    assert compare_image("a.png", ref, ref[:-1], th=Thresholds(score=0.05)).passed
    assert not compare_image("a.png", ref, ref[:-1], th=Thresholds(score=0.04)).passed


def test_lowest_score_at_the_detection_cap_may_differ(fixtures):
    ref = load_expected(fixtures / "keypoint_rcnn_R_50_FPN" / "expected_0.npz")
    assert len(ref) == 100  # TEST.DETECTIONS_PER_IMAGE
    order = np.argsort(-ref.scores, kind="stable")
    # Our side keeps a different 100th instance, scored just below the reference's lowest.
    last = ref[order[-1:]]
    other = replace(last, pred_boxes=last.pred_boxes + 40.0, scores=last.scores - 5e-5)
    ours = Instances(ref.image_size,
                     np.concatenate([ref.pred_boxes[order[:-1]], other.pred_boxes]),
                     np.concatenate([ref.scores[order[:-1]], other.scores]),
                     np.concatenate([ref.pred_classes[order[:-1]], other.pred_classes]),
                     pred_keypoints=np.concatenate([ref.pred_keypoints[order[:-1]],
                                                    other.pred_keypoints]))
    res = compare_image("k.png", ref, ours, th=Thresholds(score=0.05, max_detections=100))
    assert res.passed, res.failures
    assert len(res.unmatched_reference_scores) == len(res.unmatched_ours_scores) == 1
    assert res.keypoint_max_abs_px == 0.0
    res = compare_image("k.png", ref, ours, th=Thresholds(score=0.05, max_detections=300))
    assert not res.passed  # without the cap the same difference is a real one
    shifted = ref.pred_keypoints.copy()
    shifted[5, 1, 0] += 0.3
    res = compare_image("k.png", ref, replace(ref, pred_keypoints=shifted))
    assert any("keypoint differs by 0.3px" in f for f in res.failures)


def test_report_json_and_table(fixtures, mask_ref):
    other = load_expected(fixtures / "mask_rcnn_R_50_FPN" / "expected_1.npz")
    boxes = other.pred_boxes.copy()
    boxes[0] += 1.0
    report = compare_many(["image_0.png", "image_1.png"], [mask_ref, other],
                          [_permuted(mask_ref), replace(other, pred_boxes=boxes)],
                          Tolerances(), Thresholds(), model="m.onnx", reference="detectron2")
    assert not report.passed
    data = json.loads(report.dumps())
    assert data["passed"] is False and data["tolerances"]["box_px"] == 0.1
    assert [im["passed"] for im in data["images"]] == [True, False]
    assert data["images"][1]["box_max_abs_px"] == pytest.approx(1.0)
    table = report.format_table().splitlines()
    assert table[0].split()[:4] == ["image", "ref", "ours", "match"]
    assert table[1].startswith("image_0.png") and table[1].endswith("PASS")
    assert "FAIL: box differs by 1px" in table[2]
    assert table[-1] == "FAIL: 1 of 2 images within tolerance"
