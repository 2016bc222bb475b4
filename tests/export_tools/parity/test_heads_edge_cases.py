"""Every head on the edge cases: no detections, the detections-per-image cap, a tiny image.

The models are the fixtures' own, exported with config overrides where a case needs them (a score
threshold no detection can pass; a cap of 5 detections).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from daemon.evaluation.parity import Tolerances, compare_image
from daemon.inference.predictor import TIE_OUTPUTS, CompactPrediction, Predictor
from daemon.inference.records import image_record
from tests.conftest import manifest, require_fixtures

HEAD_MODELS = ("mask_rcnn_R_50_FPN", "mask_rcnn_R_50_C4", "keypoint_rcnn_R_50_FPN",
               "cascade_mask_rcnn_R_50_FPN", "panoptic_fpn_R_50")
CAP = 5
SAME = Tolerances(score=1e-6, box_px=1e-4, mask_iou=1.0, keypoint_px=1e-4)


@pytest.fixture(scope="module")
def export_with(tmp_path_factory: pytest.TempPathFactory):
    """``export_with(model, opts)`` -> a Predictor for the fixture model with config overrides."""
    from export_tools.export import export_model

    out_dir = tmp_path_factory.mktemp("edge_models")

    def export(model: str, opts: list[str]) -> Predictor:
        folder = require_fixtures() / model
        meta = manifest(model)
        out = out_dir / f"{model}-{len(list(out_dir.iterdir()))}.onnx"
        export_model(folder / "config.yaml", folder / "model_final.pth", out, opts=opts,
                     class_names=meta["thing_classes"], stuff_classes=meta.get("stuff_classes"))
        return Predictor(out)

    return export


def _image(model: str, size: tuple[int, int] | None = None) -> np.ndarray:
    image = cv2.imread(str(require_fixtures() / model / "image_0.png"))
    return image if size is None else cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)


def _check_consistent(compact: CompactPrediction, pred: Predictor) -> None:
    """Every per-instance output has one row per detection; records serialise to JSON."""
    meta = pred.metadata
    h, w = compact.image_size
    inst = compact.to_instances()
    n = len(inst)
    assert inst.pred_boxes.shape == (n, 4)
    if meta.has_masks:
        assert inst.pred_masks.shape == (n, h, w) and inst.mask_probs.shape[0] == n
    if meta.has_keypoints:
        k = len(meta.keypoint_names)
        assert inst.pred_keypoints.shape == (n, k, 3)
        assert np.isfinite(inst.pred_keypoints).all()
    panoptic = compact.to_panoptic(inst) if meta.has_panoptic else None
    if panoptic is not None:
        assert panoptic.panoptic_seg.shape == panoptic.sem_seg.shape == (h, w)
        ids = {s["id"] for s in panoptic.segments_info}
        assert set(np.unique(panoptic.panoptic_seg)) <= ids | {0}
    json.dumps(image_record("x.png", inst, meta, panoptic))


@pytest.mark.parametrize("model", HEAD_MODELS)
def test_zero_detections(model: str, export_with) -> None:
    pred = export_with(model, ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "1.0"])
    for image in (_image(model), np.full((64, 48, 3), 127, np.uint8)):
        compact = pred.predict_compact(image)
        assert len(compact) == 0
        _check_consistent(compact, pred)
        if pred.metadata.has_panoptic:
            result = compact.to_panoptic()
            assert not any(s["isthing"] for s in result.segments_info)


@pytest.mark.parametrize("model", HEAD_MODELS)
def test_detections_cap_keeps_the_best(model: str, export_with, export_fixture_model) -> None:
    capped = export_with(model, ["TEST.DETECTIONS_PER_IMAGE", str(CAP)])
    full = Predictor(export_fixture_model(model))
    image = _image(model)
    ours, ref = capped(image), full(image)
    assert len(ref) > CAP and len(ours) == CAP
    report = compare_image("capped", ref[np.arange(CAP)], ours, SAME)
    assert report.passed, report.failures
    _check_consistent(capped.predict_compact(image), capped)


@pytest.mark.parametrize("model", HEAD_MODELS)
def test_tiny_image(model: str, export_fixture_model) -> None:
    """An image smaller than a 28 x 28 mask patch: masks pasted into 12 x 16 pixels."""
    pred = Predictor(export_fixture_model(model))
    image = _image(model, (12, 16))
    compact = pred.predict_compact(image)
    assert len(compact) > 0, "the downscaled scene still gives (weak) detections"
    _check_consistent(compact, pred)
    inst = compact.to_instances()
    assert (inst.pred_boxes[:, 0::2] <= 16).all() and (inst.pred_boxes[:, 1::2] <= 12).all()
    if inst.pred_masks is not None:
        for i in range(len(inst)):
            ref = _reference_paste(inst.mask_probs[i], inst.pred_boxes[i], (12, 16))
            assert np.array_equal(inst.pred_masks[i], ref), f"instance {i}"
    if inst.pred_keypoints is not None:
        xy = inst.pred_keypoints[:, :, :2]
        assert (xy >= 0).all() and (xy[..., 0] <= 16).all() and (xy[..., 1] <= 12).all()
    _check_consistent(pred.predict_compact(np.full((8, 8, 3), 200, np.uint8)), pred)


def _reference_paste(probs: np.ndarray, box: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Detectron2's paste written pixel by pixel: bilinear sampling of the ``M x M`` mask at each
    pixel centre of the box's integer bounds (one pixel of margin), zero outside, >= 0.5."""
    h, w = hw
    m = probs.shape[0]
    x0, y0, x1, y1 = (np.float32(v) for v in box)
    out = np.zeros(hw, bool)
    for y in range(max(int(np.floor(y0)) - 1, 0), min(int(np.ceil(y1)) + 1, h)):
        for x in range(max(int(np.floor(x0)) - 1, 0), min(int(np.ceil(x1)) + 1, w)):
            gx = (np.float32(x) + np.float32(0.5) - x0) / (x1 - x0) * 2 - 1
            gy = (np.float32(y) + np.float32(0.5) - y0) / (y1 - y0) * 2 - 1
            out[y, x] = _bilinear_zero(probs, ((gx + 1) * m - 1) / 2, ((gy + 1) * m - 1) / 2) >= 0.5
    return out


def _bilinear_zero(img: np.ndarray, x: float, y: float) -> float:
    ix, iy = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - ix, y - iy
    total = 0.0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = iy + dy, ix + dx
            if 0 <= yy < img.shape[0] and 0 <= xx < img.shape[1]:
                total += float(wy * wx * img[yy, xx])
    return total


def test_head_outputs_and_metadata(export_fixture_model) -> None:
    outputs = {m: Predictor(export_fixture_model(m)).metadata.outputs for m in HEAD_MODELS}
    for names in outputs.values():
        assert names[:6] == ["boxes", "scores", "classes", *TIE_OUTPUTS]
    assert outputs["keypoint_rcnn_R_50_FPN"][6:] == ["keypoint_heatmaps"]
    assert outputs["cascade_mask_rcnn_R_50_FPN"][6:] == ["mask_probs"]
    assert outputs["panoptic_fpn_R_50"][6:] == ["mask_probs", "sem_seg"]
    pan = Predictor(export_fixture_model("panoptic_fpn_R_50"))
    assert pan.metadata.panoptic == {"enabled": True, "overlap_thresh": 0.5,
                                     "stuff_area_limit": 4096,
                                     "instances_confidence_thresh": 0.5, "sem_seg_stride": 4}
    raw = pan.run_network(np.zeros((1, 3, 96, 400), np.float32))
    assert raw["sem_seg"].shape == (1, 3, 96 // 4, 416 // 4)  # padded to 32, at stride 4
    kp = Predictor(export_fixture_model("keypoint_rcnn_R_50_FPN"))
    raw = kp.run_network(np.load(require_fixtures() / "keypoint_rcnn_R_50_FPN" /
                                 "expected_0.npz")["input"][None])
    assert raw["keypoint_heatmaps"].shape == (len(raw["boxes"]), 3, 56, 56)
