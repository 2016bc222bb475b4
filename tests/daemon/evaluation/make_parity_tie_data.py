"""Regenerate ``tie_cap_cascade.npz`` / ``tie_nms_lvis.npz`` with real Detectron2 (torch needed).

    PYTHONPATH=. /path/to/detectron2-venv/bin/python -m \\
        tests.daemon.evaluation.make_parity_tie_data SWEEP_DIR IMAGE OUT.npz

SWEEP_DIR is a folder ``benchmarks/zoo_verify.sh`` wrote (config.yaml, w.pkl, m.onnx):
``Misc/cascade_mask_rcnn_R_50_FPN_1x`` with ``mask_rcnn_R_50_FPN_demo/image_1.png``, and
``LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x`` with ``faster_rcnn_R_50_FPN/image_0.png``.
Saves Detectron2's final instances and ours (boxes, scores, classes) with the config's score
threshold, detections cap and box NMS threshold.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from daemon.inference.predictor import Predictor


def main() -> int:
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    folder, image, out = sys.argv[1:4]
    cfg = get_cfg()
    cfg.merge_from_file(f"{folder}/config.yaml")
    cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE = f"{folder}/w.pkl", "cpu"
    img = cv2.imread(image)
    ref = DefaultPredictor(cfg)(img)["instances"]
    ours = Predictor(f"{folder}/m.onnx", backend="onnxruntime")(img)
    np.savez_compressed(
        out, ref_boxes=ref.pred_boxes.tensor.numpy(), ref_scores=ref.scores.numpy(),
        ref_classes=ref.pred_classes.numpy(), our_boxes=ours.pred_boxes, our_scores=ours.scores,
        our_classes=ours.pred_classes, image_hw=np.array(img.shape[:2]),
        max_detections=cfg.TEST.DETECTIONS_PER_IMAGE,
        score_thresh=cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
        nms_thresh=cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST)
    print(f"wrote {out}: {len(ref)} Detectron2 instances, {len(ours)} ours")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
