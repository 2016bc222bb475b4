"""``d2stream verify``: its report on our own outputs vs Detectron2's saved ones, the message when
detectron2 is missing, and (where detectron2 is installed) the full comparison."""

from __future__ import annotations

import json

import cv2
import pytest

from daemon.cli.main import main
from daemon.evaluation.parity import Thresholds, Tolerances, compare_many
from daemon.evaluation.reference import missing_reference_packages
from daemon.inference.predictor import Predictor
from tests.daemon.evaluation.conftest import load_expected

MISSING = missing_reference_packages()
NEEDS_D2 = pytest.mark.skipif(
    bool(MISSING), reason=f"{' and '.join(MISSING)} not installed: the Detectron2 side of "
    "verify cannot run here (pip install torch==2.13.0 and detectron2 from source)")


@pytest.mark.parametrize("model", ["mask_rcnn_R_50_FPN", "retinanet_R_50_FPN"])
def test_report_of_exported_model_against_detectron2_outputs(model, fixtures, exported_model):
    folder = fixtures / model
    predictor = Predictor(exported_model(model))
    names = [f"image_{i}.png" for i in range(5)]
    refs = [load_expected(folder / f"expected_{i}.npz") for i in range(5)]
    ours = [predictor(cv2.imread(str(folder / n))) for n in names]
    report = compare_many(names, refs, ours, Tolerances(), Thresholds(0.05, 100),
                          model=model, reference="fixture")
    assert report.passed, report.format_table()
    data = json.loads(report.dumps())
    assert set(data) == {"model", "reference", "passed", "tolerances", "thresholds", "images"}
    assert data["tolerances"] == {"score": 1e-4, "box_px": 0.1, "mask_iou": 0.99,
                                  "keypoint_px": 0.1}
    first = data["images"][0]
    assert first["num_reference"] == len(refs[0]) and first["passed"] is True
    assert first["box_max_abs_px"] <= 0.1 and first["score_max_abs"] <= 1e-4
    if model.startswith("mask"):
        assert first["mask_iou_min"] >= 0.99
    else:
        assert first["mask_iou_min"] is None
    assert report.format_table().splitlines()[-1] == "PASS: 5 of 5 images within tolerance"


@pytest.mark.skipif(not MISSING, reason="detectron2 and torch are installed here")
def test_without_detectron2_verify_says_what_to_install(fixtures, caplog, tmp_path):
    folder = fixtures / "faster_rcnn_R_50_FPN"
    rc = main(["verify", "--config-file", str(folder / "config.yaml"), "--weights",
               str(folder / "model_final.pth"), str(tmp_path / "m.onnx"),
               str(folder / "image_0.png")])
    assert rc == 3
    (msg,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert "pip install torch==2.13.0" in msg and "detectron2" in msg and "\n" not in msg


@NEEDS_D2
@pytest.mark.parametrize("model", ["mask_rcnn_R_50_FPN", "keypoint_rcnn_R_50_FPN"])
def test_verify_against_detectron2(model, fixtures, exported_model, tmp_path, capsys):
    folder = fixtures / model
    report = tmp_path / "verify.json"
    rc = main(["verify", "--config-file", str(folder / "config.yaml"), "--weights",
               str(folder / "model_final.pth"), str(exported_model(model)), str(folder),
               "--report", str(report)])
    out = capsys.readouterr().out
    assert rc == 0, out
    data = json.loads(report.read_text())
    assert data["passed"] is True and len(data["images"]) == 5
    assert out.splitlines()[-1] == "PASS: 5 of 5 images within tolerance"
