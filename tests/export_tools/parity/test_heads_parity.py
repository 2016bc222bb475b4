"""Parity of Keypoint R-CNN, Cascade Mask R-CNN and Panoptic FPN with Detectron2's predictions.

Final instances at the original resolution: same instances as matched sets (class equal, score
within 1e-4), boxes and keypoints within 1e-1 px, pasted masks IoU >= 0.99. At network resolution
(``raw_*``): boxes and keypoints within 1e-2 px, mask probabilities within 1e-4. Panoptic FPN:
semantic labels and panoptic segment ids equal on >= 99.9% of the pixels, and the same segments.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from daemon.evaluation.parity import Thresholds, Tolerances, compare_image, match_instances
from daemon.inference.instances import Instances
from daemon.inference.keypoints import heatmaps_to_keypoints
from daemon.inference.predictor import Predictor
from tests.conftest import require_fixtures

RAW_TOL = Tolerances(score=1e-4, box_px=1e-2, keypoint_px=1e-2)
FINAL_TOL = Tolerances(score=1e-4, box_px=1e-1, mask_iou=0.99, keypoint_px=1e-1)
KEYPOINT_SCORE_TOL = 1e-4
PIXEL_AGREEMENT = 0.999
IMAGES = range(5)
KEYPOINT, CASCADE, PANOPTIC = ("keypoint_rcnn_R_50_FPN", "cascade_mask_rcnn_R_50_FPN",
                               "panoptic_fpn_R_50")


@pytest.fixture(scope="module")
def predictor_for(export_fixture_model):
    cache: dict[str, Predictor] = {}

    def get(model: str) -> Predictor:
        if model not in cache:
            cache[model] = Predictor(export_fixture_model(model))
        return cache[model]

    return get


def _expected(model: str, i: int):
    root = require_fixtures() / model
    return np.load(root / f"expected_{i}.npz"), cv2.imread(str(root / f"image_{i}.png"))


def _thresholds(pred: Predictor) -> Thresholds:
    return Thresholds(pred.metadata.score_thresh, pred.metadata.detections_per_image)


def _check(report) -> None:
    assert report.passed, f"{report.image}: {'; '.join(report.failures)}"


@pytest.mark.parametrize("model", [KEYPOINT, CASCADE, PANOPTIC])
def test_final_instances_match_detectron2(model: str, predictor_for) -> None:
    pred = predictor_for(model)
    for i in IMAGES:
        expected, image = _expected(model, i)
        np.testing.assert_array_equal(pred.preprocess(image)[0], expected["input"])
        ours = pred(image)
        files = expected.files
        ref = Instances(image.shape[:2], expected["boxes"], expected["scores"],
                        expected["classes"],
                        pred_masks=expected["masks"] if "masks" in files else None,
                        pred_keypoints=expected["keypoints"] if "keypoints" in files else None)
        report = compare_image(f"{model}/image_{i}", ref, ours, FINAL_TOL, _thresholds(pred))
        _check(report)
        assert (ours.pred_masks is None) == ("masks" not in files)
        assert (ours.pred_keypoints is None) == ("keypoints" not in files)
        if ours.pred_keypoints is not None:
            _check_keypoint_scores(ref, ours, FINAL_TOL)


def _check_keypoint_scores(ref: Instances, ours: Instances, tol: Tolerances) -> None:
    pairs = match_instances(ref, ours, tol)
    if not pairs:
        return
    ri, oj = (list(x) for x in zip(*pairs))
    worst = float(np.abs(ref.pred_keypoints[ri, :, 2] - ours.pred_keypoints[oj, :, 2]).max())
    assert worst <= KEYPOINT_SCORE_TOL, f"keypoint scores differ by {worst:.3g}"


@pytest.mark.parametrize("model", [KEYPOINT, CASCADE])
def test_raw_outputs_match_detectron2(model: str, predictor_for) -> None:
    """Boxes, mask probabilities and decoded keypoints at network resolution."""
    pred = predictor_for(model)
    for i in IMAGES:
        expected, _ = _expected(model, i)
        raw = pred.run_network(expected["input"][None])
        hw = expected["input"].shape[1:]
        kw_ours, kw_ref = {}, {}
        if "keypoint_heatmaps" in raw:
            kw_ours["pred_keypoints"] = heatmaps_to_keypoints(raw["keypoint_heatmaps"],
                                                              raw["boxes"])
            kw_ref["pred_keypoints"] = expected["raw_keypoints"]
        ours = Instances(hw, raw["boxes"], raw["scores"], raw["classes"], **kw_ours)
        ref = Instances(hw, expected["raw_boxes"], expected["raw_scores"],
                        expected["raw_classes"], **kw_ref)
        _check(compare_image(f"{model}/image_{i} raw", ref, ours, RAW_TOL, _thresholds(pred)))
        pairs = match_instances(ref, ours, RAW_TOL)
        assert len(pairs) == len(ref) == len(ours)
        if "mask_probs" in raw and pairs:
            worst = max(float(np.abs(expected["raw_masks"][a, 0] - raw["mask_probs"][b]).max())
                        for a, b in pairs)
            assert worst <= 1e-4, f"image_{i}: raw mask probabilities differ by {worst:.3g}"
        if "keypoint_heatmaps" in raw:
            assert raw["keypoint_heatmaps"].shape[1:] == expected["raw_keypoint_heatmaps"].shape[1:]
            _check_keypoint_scores(ref, ours, RAW_TOL)


def test_keypoint_decoding_matches_detectron2_on_its_own_heatmaps() -> None:
    """heatmaps_to_keypoints alone: Detectron2's raw heatmaps and boxes -> its raw keypoints."""
    for i in IMAGES:
        expected, _ = _expected(KEYPOINT, i)
        ours = heatmaps_to_keypoints(expected["raw_keypoint_heatmaps"], expected["raw_boxes"])
        ref = expected["raw_keypoints"]
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours[..., :2], ref[..., :2], rtol=0, atol=1e-3)
        np.testing.assert_allclose(ours[..., 2], ref[..., 2], rtol=0, atol=KEYPOINT_SCORE_TOL)


def test_panoptic_segmentation_matches_detectron2(predictor_for) -> None:
    pred = predictor_for(PANOPTIC)
    manifest = json.loads((require_fixtures() / PANOPTIC / "manifest.json").read_text())
    assert pred.metadata.stuff_classes == manifest["stuff_classes"]
    for i in IMAGES:
        expected, image = _expected(PANOPTIC, i)
        compact = pred.predict_compact(image)
        result = compact.to_panoptic()
        sem_agree = float((result.sem_seg == expected["sem_seg_argmax"]).mean())
        assert sem_agree >= PIXEL_AGREEMENT, f"image_{i}: sem_seg agrees on {sem_agree:.4%}"
        pan_agree = float((result.panoptic_seg == expected["panoptic_seg"]).mean())
        assert pan_agree >= PIXEL_AGREEMENT, f"image_{i}: panoptic_seg agrees on {pan_agree:.4%}"
        _check_segments(result.segments_info, manifest["images"][i]["segments_info"],
                        image.shape[0] * image.shape[1], i)
        again = compact.to_panoptic(compact.to_instances())  # from already pasted masks
        np.testing.assert_array_equal(again.panoptic_seg, result.panoptic_seg)
        assert again.segments_info == result.segments_info


def _check_segments(ours: list[dict], ref: list[dict], num_pixels: int, i: int) -> None:
    assert [s["id"] for s in ours] == [s["id"] for s in ref], f"image_{i}"
    for a, b in zip(ours, ref):
        assert (a["isthing"], a["category_id"]) == (b["isthing"], b["category_id"]), f"image_{i}"
        if b["isthing"]:
            assert abs(a["score"] - b["score"]) <= 1e-4
            assert a["instance_id"] == b["instance_id"]
        else:
            assert abs(a["area"] - b["area"]) <= (1 - PIXEL_AGREEMENT) * num_pixels
