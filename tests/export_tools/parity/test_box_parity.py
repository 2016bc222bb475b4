"""Parity of exported box models (and Mask R-CNN masks) with Detectron2's own predictions.

Every fixture image is compared twice: the raw detections at network resolution (before
``detector_postprocess``) within 1e-2 px, and the final instances at the original resolution
within 1e-1 px (pasted masks: IoU >= 0.99 per instance). Scores within 1e-4, classes equal, as
matched sets.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from daemon.evaluation.parity import Thresholds, Tolerances, compare_image
from daemon.inference.instances import Instances
from daemon.inference.predictor import Predictor
from tests.conftest import BOX_MODELS, MASK_MODELS, require_fixtures

RAW_TOL = Tolerances(score=1e-4, box_px=1e-2)
FINAL_TOL = Tolerances(score=1e-4, box_px=1e-1, mask_iou=0.99)
IMAGES = range(5)


def _weights_variants() -> list[tuple[str, str]]:
    root = require_fixtures()
    out = []
    for model in dict.fromkeys(BOX_MODELS + MASK_MODELS):
        for weights in ("model_final.pth", "model_final.pkl"):
            if (root / model / weights).is_file():
                out.append((model, weights))
    return out


def _raw_variants() -> list[tuple[str, str]]:
    """GeneralizedRCNN models: their fixtures also hold the outputs before detector_postprocess."""
    root = require_fixtures()
    return [(m, w) for m, w in _weights_variants()
            if "raw_boxes" in np.load(root / m / "expected_0.npz").files]


def _thresholds(pred: Predictor) -> Thresholds:
    return Thresholds(pred.metadata.score_thresh, pred.metadata.detections_per_image)


def _assert_parity(report) -> None:
    assert report.passed, f"{report.image}: {'; '.join(report.failures)}"


@pytest.fixture(scope="module")
def predictor_for(export_fixture_model):
    cache: dict[tuple[str, str], Predictor] = {}

    def get(model: str, weights: str) -> Predictor:
        if (model, weights) not in cache:
            cache[(model, weights)] = Predictor(export_fixture_model(model, weights))
        return cache[(model, weights)]

    return get


@pytest.mark.parametrize(("model", "weights"), _weights_variants())
def test_final_instances_match_detectron2(model: str, weights: str, predictor_for) -> None:
    pred = predictor_for(model, weights)
    root = require_fixtures() / model
    for i in IMAGES:
        expected = np.load(root / f"expected_{i}.npz")
        image = cv2.imread(str(root / f"image_{i}.png"))
        ours = pred(image)
        ref = Instances(image.shape[:2], expected["boxes"], expected["scores"],
                        expected["classes"],
                        pred_masks=expected["masks"] if "masks" in expected.files else None)
        _assert_parity(compare_image(f"{model}/image_{i}", ref, ours, FINAL_TOL,
                                     _thresholds(pred)))


@pytest.mark.parametrize(("model", "weights"), _raw_variants())
def test_raw_network_outputs_match_detectron2(model: str, weights: str, predictor_for) -> None:
    pred = predictor_for(model, weights)
    root = require_fixtures() / model
    for i in IMAGES:
        expected = np.load(root / f"expected_{i}.npz")
        net_input = expected["input"][None]
        raw = pred.run_network(net_input)
        hw = net_input.shape[2:]
        ours = Instances(hw, raw["boxes"], raw["scores"], raw["classes"])
        ref = Instances(hw, expected["raw_boxes"], expected["raw_scores"],
                        expected["raw_classes"])
        report = compare_image(f"{model}/image_{i} raw", ref, ours, RAW_TOL, _thresholds(pred))
        _assert_parity(report)
        if "raw_masks" in expected.files and len(ref):
            _assert_raw_masks(ref, ours, expected["raw_masks"][:, 0], raw["mask_probs"])


def _assert_raw_masks(ref: Instances, ours: Instances, ref_probs: np.ndarray,
                      our_probs: np.ndarray) -> None:
    """Mask probabilities of matched instances agree to 1e-4."""
    from daemon.evaluation.parity import match_instances

    pairs = match_instances(ref, ours, RAW_TOL)
    assert pairs
    worst = max(float(np.abs(ref_probs[i] - our_probs[j]).max()) for i, j in pairs)
    assert worst <= 1e-4, f"raw mask probabilities differ by {worst:.3g}"


@pytest.mark.parametrize("model", sorted(set(BOX_MODELS + MASK_MODELS)))
def test_preprocessing_matches_detectron2_input(model: str, predictor_for) -> None:
    """ResizeShortestEdge + channel order give exactly the network input Detectron2 saw."""
    pred = predictor_for(model, "model_final.pth")
    root = require_fixtures() / model
    for i in IMAGES:
        expected = np.load(root / f"expected_{i}.npz")["input"]
        ours = pred.preprocess(cv2.imread(str(root / f"image_{i}.png")))[0]
        assert ours.shape == expected.shape
        np.testing.assert_array_equal(ours, expected)
