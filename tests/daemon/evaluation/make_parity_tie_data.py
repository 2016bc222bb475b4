"""Regenerate ``tie_cap_cascade.npz`` / ``tie_nms_lvis.npz`` / ``tie_nms_swin_l.npz`` with real
Detectron2 (torch needed).

    PYTHONPATH=. /path/to/detectron2-venv/bin/python -m \\
        tests.daemon.evaluation.make_parity_tie_data SWEEP_DIR IMAGE OUT.npz [LAZY_CONFIG.py]

SWEEP_DIR is a folder ``benchmarks/zoo_verify.sh`` wrote (config.yaml, w.pkl, m.onnx):
``Misc/cascade_mask_rcnn_R_50_FPN_1x`` with ``mask_rcnn_R_50_FPN_demo/image_1.png``, and
``LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x`` with ``faster_rcnn_R_50_FPN/image_0.png``.
With LAZY_CONFIG.py, SWEEP_DIR is the folder ``benchmarks/zoo_sweep`` wrote for that LazyConfig
file (w.pkl, m.onnx; Detectron2's model built as ``benchmarks/zoo_lazy_verify.py`` builds it):
``projects/ViTDet/configs/LVIS/cascade_mask_rcnn_swin_l_in21k_50ep.py`` with
``faster_rcnn_R_50_FPN/image_0.png``. Saves Detectron2's final instances and ours (boxes, scores,
classes) with the config's score threshold, detections cap and box NMS threshold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from daemon.inference.predictor import Predictor


def _yaml_reference(folder: str, img: np.ndarray):
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    cfg = get_cfg()
    cfg.merge_from_file(f"{folder}/config.yaml")
    cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE = f"{folder}/w.pkl", "cpu"
    ref = DefaultPredictor(cfg)(img)["instances"]
    return (ref.pred_boxes.tensor.numpy(), ref.scores.numpy(), ref.pred_classes.numpy()), cfg


def _lazy_reference(folder: str, img: np.ndarray, config: str):
    from benchmarks.zoo_lazy_verify import SIDE, detectron2_reference, our_lazy_config

    ref = detectron2_reference(Path(config), Path(folder) / "w.pkl", SIDE)(img)
    return (ref.pred_boxes, ref.scores, ref.pred_classes), our_lazy_config(Path(config), SIDE)


def main() -> int:
    folder, image, out = sys.argv[1:4]
    img = cv2.imread(image)
    if len(sys.argv) > 4:
        (boxes, scores, classes), cfg = _lazy_reference(folder, img, sys.argv[4])
    else:
        (boxes, scores, classes), cfg = _yaml_reference(folder, img)
    ours = Predictor(f"{folder}/m.onnx", backend="onnxruntime")(img)
    np.savez_compressed(
        out, ref_boxes=boxes, ref_scores=scores, ref_classes=classes,
        our_boxes=ours.pred_boxes, our_scores=ours.scores,
        our_classes=ours.pred_classes, image_hw=np.array(img.shape[:2]),
        max_detections=cfg.TEST.DETECTIONS_PER_IMAGE,
        score_thresh=cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
        nms_thresh=cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST)
    print(f"wrote {out}: {len(scores)} Detectron2 instances, {len(ours)} ours")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
