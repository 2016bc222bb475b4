"""COCO AP and COCO results on real annotation files, with predictions whose AP is known."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from daemon.evaluation.coco_eval import CocoDataset
from daemon.evaluation.coco_results import EvaluationError, instances_to_coco, write_coco_results
from daemon.evaluation.runner import evaluate_predictions
from daemon.inference.instances import Instances


def _key(bgr: np.ndarray) -> str:
    return hashlib.sha1(bgr.tobytes()).hexdigest()


def _gt_instances(coco: COCO, image_id: int, shift: float = 0.0) -> Instances:
    info = coco.imgs[image_id]
    anns = coco.imgToAnns[image_id]
    boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                       a["bbox"][1] + a["bbox"][3]] for a in anns], np.float32).reshape(-1, 4)
    masks = np.stack([coco.annToMask(a).astype(bool) for a in anns]) if anns else np.zeros(
        (0, info["height"], info["width"]), bool)
    return Instances(
        (info["height"], info["width"]), boxes + shift, np.linspace(0.99, 0.5, len(anns)),
        np.array([a["category_id"] - 1 for a in anns]), pred_masks=masks,
    )


def _oracle(shapes_val: Path, shift: float = 0.0):
    """A predict function that returns the ground truth of the image it is given."""
    coco = CocoDataset(shapes_val / "annotations.json").coco
    table = {}
    for image_id, info in coco.imgs.items():
        bgr = cv2.imread(str(shapes_val / "images" / info["file_name"]))
        table[_key(bgr)] = _gt_instances(coco, image_id, shift)
    return lambda bgr: table[_key(bgr)]


def test_ground_truth_scores_100_ap(shapes_val):
    report = evaluate_predictions(_oracle(shapes_val), shapes_val / "annotations.json",
                                  shapes_val / "images", progress=False)
    assert report.num_images == 40
    assert report.num_detections == len(json.loads((shapes_val / "annotations.json").read_text())
                                        ["annotations"])
    assert set(report.metrics) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        assert report.metrics[task]["AP"] == pytest.approx(100.0)
        assert set(report.metrics[task]["per_class"]) == {"square", "circle", "triangle"}
    table = report.format_table()
    assert "bbox" in table and "100.000" in table and "40 images" in table
    assert json.loads(json.dumps(report.to_json()))["bbox"]["AP50"] == pytest.approx(100.0)


def test_shifted_boxes_lower_box_ap_only(shapes_val):
    report = evaluate_predictions(_oracle(shapes_val, shift=6.0), shapes_val / "annotations.json",
                                  shapes_val / "images", progress=False)
    assert report.metrics["bbox"]["AP"] < 90.0
    assert report.metrics["segm"]["AP"] == pytest.approx(100.0)  # masks did not move


def test_coco_results_file_is_standard(shapes_val, tmp_path):
    coco = CocoDataset(shapes_val / "annotations.json").coco
    image_id = next(iter(coco.imgs))
    inst = _gt_instances(coco, image_id)
    out = tmp_path / "sub" / "results.json"
    n = write_coco_results(out, [(image_id, inst)], category_ids=[1, 2, 3])
    data = json.loads(out.read_text())
    assert n == len(data) == len(inst)
    first = data[0]
    x0, y0, x1, y1 = inst.pred_boxes[0]
    assert first["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0])
    assert first["category_id"] == int(inst.pred_classes[0]) + 1
    assert np.array_equal(mask_utils.decode(first["segmentation"]).astype(bool), inst.pred_masks[0])
    coco.loadRes(str(out))  # pycocotools accepts the file as a results file


def test_keypoint_ap_with_custom_sigmas(fixtures, tmp_path):
    """COCO keypoint AP on the keypoint fixture's own predictions used as ground truth."""
    folder = fixtures / "keypoint_rcnn_R_50_FPN"
    images, anns, table = [], [], {}
    for i in range(3):
        exp = np.load(folder / f"expected_{i}.npz")
        bgr = cv2.imread(str(folder / f"image_{i}.png"))
        h, w = bgr.shape[:2]
        images.append({"id": i + 1, "file_name": f"image_{i}.png", "height": h, "width": w})
        keep = np.argsort(-exp["scores"], kind="stable")[:10]  # COCO keypoint AP uses 20 dets
        boxes, kps = exp["boxes"][keep], exp["keypoints"][keep]
        for b, kp in zip(boxes, kps, strict=True):
            xy = np.round(kp[:, :2] - 0.5)  # COCO stores integer pixel indices
            flat = np.concatenate([xy, np.full((3, 1), 2.0)], axis=1).reshape(-1).tolist()
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
                         "area": float((b[2] - b[0]) * (b[3] - b[1])),
                         "keypoints": flat, "num_keypoints": 3})
        kp_pred = kps.copy()
        kp_pred[:, :, :2] = np.round(kp_pred[:, :, :2] - 0.5) + 0.5
        table[_key(bgr)] = Instances((h, w), boxes, np.linspace(0.9, 0.5, len(boxes)),
                                     np.zeros(len(boxes), np.int64), pred_keypoints=kp_pred)
    ann = tmp_path / "kp.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "triangle", "keypoints": ["apex", "left", "right"]}]}))
    predict = lambda bgr: table[_key(bgr)]  # noqa: E731
    with pytest.raises(EvaluationError, match="3 keypoints"):
        evaluate_predictions(predict, ann, folder, progress=False)
    report = evaluate_predictions(predict, ann, folder, progress=False,
                                  kpt_oks_sigmas=[0.05, 0.05, 0.05])
    assert report.metrics["keypoints"]["AP"] == pytest.approx(100.0)
    assert report.metrics["bbox"]["AP"] == pytest.approx(100.0)


def test_empty_predictions_give_undefined_ap(shapes_val):
    empty = lambda bgr: Instances.empty(bgr.shape[:2])  # noqa: E731
    report = evaluate_predictions(empty, shapes_val / "annotations.json", shapes_val / "images",
                                  progress=False, max_images=2)
    assert report.num_images == 2 and report.num_detections == 0
    assert report.metrics["bbox"]["AP"] is None
    assert "n/a" in report.format_table()


def test_instances_to_coco_without_mapping_uses_class_index():
    inst = Instances((10, 10), [[1, 2, 5, 8]], [0.5], [2])
    (res,) = instances_to_coco(inst, "img.png")
    assert res == {"image_id": "img.png", "category_id": 2, "bbox": [1.0, 2.0, 4.0, 6.0],
                   "score": 0.5}


def test_bad_annotation_file_is_reported(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text('{"images": []}')
    with pytest.raises(EvaluationError, match="not a COCO annotation file"):
        CocoDataset(bad)


def test_eval_cli_errors_are_one_line(exported_model, shapes_val, tmp_path, caplog):
    from daemon.cli.main import main

    model = str(exported_model("faster_rcnn_R_50_FPN"))
    missing = tmp_path / "nope.json"
    assert main(["eval", model, "--coco-json", str(missing), "--images",
                 str(shapes_val / "images"), "--no-progress"]) == 1
    assert main(["eval", model, "--coco-json", str(shapes_val / "annotations.json"), "--images",
                 str(tmp_path / "no_images"), "--no-progress"]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2 and all("\n" not in e for e in errors)
    assert str(missing) in errors[0] and "no_images" in errors[1]


def test_predict_coco_results_are_usable_by_cocoeval(exported_model, shapes_val, tmp_path):
    """``predict --coco-results`` output, scored by plain pycocotools, gives Detectron2's AP."""
    from pycocotools.cocoeval import COCOeval

    from daemon.cli.main import main

    model = str(exported_model("faster_rcnn_R_50_FPN"))
    out = tmp_path / "results.json"
    assert main(["predict", model, str(shapes_val / "images"), "--coco-results", str(out),
                 "--coco-json", str(shapes_val / "annotations.json")]) == 0
    gt = COCO(str(shapes_val / "annotations.json"))
    coco_eval = COCOeval(gt, gt.loadRes(str(out)), "bbox")
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    expected = json.loads((shapes_val / "detectron2_ap.json").read_text())
    assert abs(coco_eval.stats[0] * 100 - expected["models"]["faster_rcnn_R_50_FPN"]["bbox"]["AP"]
               ) <= 0.1

    plain = tmp_path / "plain.json"
    one = shapes_val / "images" / "0000.png"
    assert main(["predict", model, str(one), "--coco-results", str(plain)]) == 0
    data = json.loads(plain.read_text())
    assert data and {r["image_id"] for r in data} == {str(one)}
    assert {r["category_id"] for r in data} <= {0, 1, 2}
