"""``d2stream export`` + ``predict --json --output-dir`` for the mask, keypoint and panoptic heads.

The JSON is checked against the same model run in-process: RLE segmentations decode to the pasted
masks, keypoints are the decoded ones, panoptic segments decode to ``panoptic_seg``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from daemon.inference.predictor import Predictor
from daemon.inference.rle import decode_rle
from tests.conftest import require_fixtures
from tests.daemon.cli.cli_runner import d2stream


def _export(model: str, out: Path, *extra: str) -> Path:
    folder = require_fixtures() / model
    result = d2stream("export", "--config-file", folder / "config.yaml", "--weights",
                      folder / "model_final.pth", "--output", out,
                      "--classes", "square,circle,triangle" if "keypoint" not in model
                      else "triangle", *extra)
    assert result.returncode == 0, result.stderr
    return out


def _predict(model_path: Path, image: Path, tmp_path: Path,
             draw_threshold: float = 0.2) -> tuple[dict, Path]:
    out_json, out_dir = tmp_path / "p.json", tmp_path / "drawn"
    result = d2stream("predict", model_path, image, "--json", out_json, "--output-dir", out_dir,
                      "--draw-threshold", str(draw_threshold))
    assert result.returncode == 0, result.stderr
    return json.loads(out_json.read_text()), out_dir / f"{image.stem}.png"


def _changed(drawn: Path, source: Path) -> int:
    a, b = cv2.imread(str(drawn)), cv2.imread(str(source))
    assert a.shape == b.shape
    return int((np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 0).sum())


def test_masks_as_rle(tmp_path: Path) -> None:
    model = _export("cascade_mask_rcnn_R_50_FPN", tmp_path / "cascade.onnx")
    image = require_fixtures() / "cascade_mask_rcnn_R_50_FPN" / "image_0.png"
    doc, drawn = _predict(model, image, tmp_path, draw_threshold=0.0)  # a weak model
    (record,) = doc["images"]
    ours = Predictor(model)(cv2.imread(str(image)))
    assert len(record["instances"]) == len(ours) > 0
    for inst, mask in zip(record["instances"], ours.pred_masks):
        assert inst["segmentation"]["size"] == [240, 320]
        assert isinstance(inst["segmentation"]["counts"], str)
        np.testing.assert_array_equal(decode_rle(inst["segmentation"]), mask)
        assert "keypoints" not in inst
    assert "panoptic" not in record
    assert _changed(drawn, image) > 0


def test_keypoints_and_skeleton(tmp_path: Path) -> None:
    model = _export("keypoint_rcnn_R_50_FPN", tmp_path / "kp.onnx", "--keypoints",
                    "apex,left,right", "--keypoint-connections", "apex-left,left-right,right-apex")
    image = require_fixtures() / "keypoint_rcnn_R_50_FPN" / "image_1.png"
    doc, drawn = _predict(model, image, tmp_path)
    assert doc["model"]["keypoint_names"] == ["apex", "left", "right"]
    assert doc["model"]["keypoint_connections"] == [["apex", "left"], ["left", "right"],
                                                    ["right", "apex"]]
    ours = Predictor(model)(cv2.imread(str(image)))
    instances = doc["images"][0]["instances"]
    assert len(instances) == len(ours) > 0
    for inst, kps in zip(instances, ours.pred_keypoints):
        assert "segmentation" not in inst
        np.testing.assert_allclose(inst["keypoints"], kps, atol=1e-3)
    assert _changed(drawn, image) > 0


def test_panoptic_segments(tmp_path: Path) -> None:
    model = _export("panoptic_fpn_R_50", tmp_path / "pan.onnx", "--stuff-classes",
                    "things,sky,ground")
    image = require_fixtures() / "panoptic_fpn_R_50" / "image_0.png"
    doc, drawn = _predict(model, image, tmp_path)
    segments = doc["images"][0]["panoptic"]["segments_info"]
    expected = np.load(require_fixtures() / "panoptic_fpn_R_50" / "expected_0.npz")
    names = [(s["category_name"], s["isthing"]) for s in segments]
    assert names == [("triangle", True), ("circle", True), ("sky", False), ("ground", False)]
    for seg in segments:
        mask = decode_rle(seg["segmentation"])
        assert (expected["panoptic_seg"][mask] == seg["id"]).mean() >= 0.999
        assert seg["area"] == int(mask.sum())
        assert ("score" in seg) == seg["isthing"] == ("instance_id" in seg)
    thing = segments[0]
    assert doc["images"][0]["instances"][thing["instance_id"]]["score"] == thing["score"]
    assert _changed(drawn, image) > 0.5 * 240 * 320  # every segment is tinted


def test_export_rejects_bad_names(tmp_path: Path) -> None:
    folder = require_fixtures() / "keypoint_rcnn_R_50_FPN"
    base = ("export", "--config-file", folder / "config.yaml", "--weights",
            folder / "model_final.pth", "--output", tmp_path / "x.onnx", "--keypoints",
            "apex,left,right")
    bad = d2stream(*base, "--keypoint-connections", "apex-nose")
    assert bad.returncode != 0 and "apex-nose" in bad.stderr and "Traceback" not in bad.stderr
    folder = require_fixtures() / "panoptic_fpn_R_50"
    bad = d2stream("export", "--config-file", folder / "config.yaml", "--weights",
                   folder / "model_final.pth", "--output", tmp_path / "y.onnx",
                   "--stuff-classes", "sky,ground")
    assert bad.returncode != 0 and "NUM_CLASSES" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()
