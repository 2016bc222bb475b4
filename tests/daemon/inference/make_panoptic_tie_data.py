"""Regenerate ``panoptic_tie_r50.npz`` with real Detectron2 (torch and detectron2 needed).

    PYTHONPATH=. /path/to/detectron2-venv/bin/python -m \\
        tests.daemon.inference.make_panoptic_tie_data SWEEP_DIR IMAGE OUT.npz

SWEEP_DIR is the folder ``benchmarks/zoo_verify.sh`` wrote for
``COCO-PanopticSegmentation/panoptic_fpn_R_50_1x.yaml`` (config.yaml, w.pkl), IMAGE
``mask_rcnn_R_50_FPN_demo/image_1.png``. Saves Detectron2's own inputs of the panoptic
combination (the instances' scores, classes and pasted masks, bit-packed; the semantic argmax)
and its result (``panoptic_seg``), plus the combination's settings.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np


def main() -> int:
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor

    folder, image, out = sys.argv[1:4]
    cfg = get_cfg()
    cfg.merge_from_file(f"{folder}/config.yaml")
    cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE = f"{folder}/w.pkl", "cpu"
    img = cv2.imread(image)
    result = DefaultPredictor(cfg)(img)
    inst, (seg, _) = result["instances"], result["panoptic_seg"]
    masks = inst.pred_masks.numpy()
    combine = cfg.MODEL.PANOPTIC_FPN.COMBINE
    np.savez_compressed(
        out, scores=inst.scores.numpy(), classes=inst.pred_classes.numpy(),
        masks=np.packbits(masks, axis=-1), width=masks.shape[-1],
        sem_labels=result["sem_seg"].argmax(0).numpy().astype(np.int32),
        panoptic_seg=seg.numpy().astype(np.int32), overlap_thresh=combine.OVERLAP_THRESH,
        stuff_area_limit=combine.STUFF_AREA_LIMIT,
        instances_confidence_thresh=combine.INSTANCES_CONFIDENCE_THRESH)
    print(f"wrote {out}: {len(inst)} instances")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
