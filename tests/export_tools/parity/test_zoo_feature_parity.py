"""ProposalNetwork, SemanticSegmentor and deformable-conv exports against real Detectron2.

The data (``zoo_features/data``) was made by ``zoo_features/make_data.py`` with Detectron2 on
the model-zoo configs ``rpn_R_50_FPN_1x``, ``rpn_R_50_C4_1x``, ``semantic_R_50_FPN_1x`` and
``mask_rcnn_R_50_FPN_1x_dconv_c3-c5`` at
narrow widths; the weights are rebuilt here from their seed (checked by checksum).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from daemon.inference.predictor import Predictor
from export_tools.config import load_config
from export_tools.export import build_onnx_from_weights
from export_tools.modeling.supported import check_supported
from tests.conftest import require_fixtures
from tests.export_tools.parity.zoo_features.models import MODELS, FeatureWeights, checksum

DATA = Path(__file__).resolve().parent / "zoo_features" / "data"
SCORE_TOL = 1e-4  # objectness logits, as scores
BOX_TOL = 0.1  # pixels at the original resolution


def _export(name: str, tmp_path: Path, backend: str = "onnxruntime") -> tuple[Predictor, dict]:
    folder = DATA / name
    manifest = json.loads((folder / "manifest.json").read_text())
    cfg = load_config(folder / "config.yaml")
    check_supported(cfg)
    weights = FeatureWeights.for_config(cfg)
    model = build_onnx_from_weights(cfg, weights, model_name=name)
    assert checksum(weights.state_dict()) == manifest["weights_sha256"], \
        "the synthetic weights changed: regenerate the data with make_data.py"
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return Predictor(path, num_threads=1, backend=backend), manifest


def _images(manifest: dict):
    root = require_fixtures()
    for i, rel in enumerate(manifest["images"]):
        yield cv2.imread(str(root / rel)), np.load(DATA / manifest["model"] / f"expected_{i}.npz")


def _unmatched(boxes: np.ndarray, logits: np.ndarray, ref_boxes: np.ndarray,
               ref_logits: np.ndarray) -> list[int]:
    """Reference rows with no row of ours within the tolerances (same row first, then any)."""
    same = (np.abs(boxes - ref_boxes).max(axis=1) <= BOX_TOL) & \
        (np.abs(logits - ref_logits) <= SCORE_TOL)
    missing = []
    for i in np.flatnonzero(~same):
        close = (np.abs(boxes - ref_boxes[i]).max(axis=1) <= BOX_TOL) & \
            (np.abs(logits - ref_logits[i]) <= SCORE_TOL)
        if not close.any():
            missing.append(int(i))
    return missing


@pytest.mark.parametrize("name", ["rpn_R_50_FPN", "rpn_R_50_C4"])
def test_proposal_network_matches_detectron2(name: str, tmp_path: Path) -> None:
    predictor, manifest = _export(name, tmp_path)
    assert predictor.metadata.meta_architecture == "ProposalNetwork"
    for image, expected in _images(manifest):
        inst = predictor(image)
        ref_boxes, ref_logits = expected["proposal_boxes"], expected["objectness_logits"]
        assert len(inst) == len(ref_boxes)
        assert np.all(np.diff(inst.objectness_logits) <= 0)
        np.testing.assert_allclose(inst.scores, 1 / (1 + np.exp(-inst.objectness_logits)),
                                   rtol=1e-5, atol=1e-6)
        assert not np.any(inst.pred_classes)
        assert _unmatched(inst.proposal_boxes, inst.objectness_logits, ref_boxes,
                          ref_logits) == []


# OpenVINO once returned the empty detection outputs of a constant-built graph as scalars
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_semantic_segmentor_matches_detectron2(tmp_path: Path, backend: str) -> None:
    predictor, manifest = _export("semantic_R_50_FPN", tmp_path, backend)
    assert predictor.metadata.has_sem_seg and not predictor.metadata.has_panoptic
    for image, expected in _images(manifest):
        compact = predictor.predict_compact(image)
        assert len(compact) == 0
        labels = compact.sem_seg_labels()
        ref = expected["sem_seg_argmax"].astype(np.int32)
        assert labels.shape == ref.shape == image.shape[:2]
        # only pixels whose two best logits are within 1e-4 may go either way
        clear = expected["sem_seg_margin"].astype(np.float32) > 1e-4
        assert np.array_equal(labels[clear], ref[clear])
        assert clear.mean() > 0.99
        result = compact.to_semantic()
        assert sum(s["area"] for s in result.segments_info) == labels.size
        assert np.array_equal(result.sem_seg, labels)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_deformable_mask_rcnn_matches_detectron2(tmp_path: Path, backend: str) -> None:
    predictor, manifest = _export("mask_rcnn_R_50_FPN_dconv", tmp_path, backend)
    for image, expected in _images(manifest):
        inst = predictor(image)
        assert len(inst) == len(expected["boxes"])
        for box, score, cls in zip(expected["boxes"], expected["scores"], expected["classes"],
                                   strict=True):
            close = (inst.pred_classes == cls) & (np.abs(inst.scores - score) <= SCORE_TOL) & \
                (np.abs(inst.pred_boxes - box).max(axis=1) <= BOX_TOL)
            assert close.any(), f"no match for class {cls} score {score} box {box}"


def test_models_cover_the_zoo_configs() -> None:
    assert {m[0] for m in MODELS.values()} == {"COCO-Detection/rpn_R_50_FPN_1x.yaml",
                                              "COCO-Detection/rpn_R_50_C4_1x.yaml",
                                              "Misc/semantic_R_50_FPN_1x.yaml",
                                              "Misc/mask_rcnn_R_50_FPN_1x_dconv_c3-c5.yaml"}
