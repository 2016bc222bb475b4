"""Regenerate ``mask_tie_r101.npz`` with real Detectron2 (torch and detectron2 needed).

    PYTHONPATH=. /path/to/detectron2-venv/bin/python -m tests.daemon.inference.make_mask_tie_data \\
        SWEEP_DIR IMAGE [OUT.npz]

SWEEP_DIR is the folder ``benchmarks/zoo_verify.sh`` wrote for
``COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x.yaml`` (config.yaml, w.pkl, m.onnx); IMAGE the
image whose mask IoU failed (``mask_rcnn_R_50_FPN_demo/image_1.png``); OUT the file to write
(default ``mask_tie_r101.npz``; Panoptic FPN configs work too: their instances). For every
instance whose pasted mask differs from ours it prints the IoU and Detectron2's soft
(pre-threshold) value at the differing pixels, and saves the worst instance: its 28x28
probabilities, its box at image scale, Detectron2's soft pasted mask and its thresholded mask.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from daemon.inference.masks import paste_mask
from daemon.inference.predictor import Predictor

OUT = Path(__file__).resolve().parent / "mask_tie_r101.npz"


def detectron2_masks(folder: Path, img: np.ndarray) -> dict[str, np.ndarray]:
    """Detectron2's mask probabilities, final boxes, soft pasted and thresholded masks."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.engine import DefaultPredictor
    from detectron2.layers.mask_ops import _do_paste_mask

    cfg = get_cfg()
    cfg.merge_from_file(str(folder / "config.yaml"))
    cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE = str(folder / "w.pkl"), "cpu"
    pred = DefaultPredictor(cfg)
    h, w = img.shape[:2]
    final = pred(img)["instances"]
    net = pred.aug.get_transform(img).apply_image(img)
    x = torch.as_tensor(net.astype("float32").transpose(2, 0, 1))
    with torch.no_grad():
        raw = pred.model.inference([{"image": x, "height": h, "width": w}],
                                   do_postprocess=False)
    raw = raw[0][0] if isinstance(raw, tuple) else raw[0]  # PanopticFPN: (instances, sem_seg)
    boxes = raw.pred_boxes.tensor.clone()
    boxes[:, 0::2] = (boxes[:, 0::2] * (w / x.shape[2])).clamp(0, w)
    boxes[:, 1::2] = (boxes[:, 1::2] * (h / x.shape[1])).clamp(0, h)
    soft, _ = _do_paste_mask(raw.pred_masks, boxes, h, w, skip_empty=False)
    masks = final.pred_masks.numpy()
    assert np.array_equal(soft.numpy() >= 0.5, masks), "soft masks are not DefaultPredictor's"
    return {"probs": raw.pred_masks[:, 0].numpy(), "boxes": boxes.numpy(),
            "classes": raw.pred_classes.numpy(), "soft": soft.numpy(), "masks": masks}


def main() -> int:
    folder, image = Path(sys.argv[1]), sys.argv[2]
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else OUT
    img = cv2.imread(image)
    ref = detectron2_masks(folder, img)
    ours = Predictor(folder / "m.onnx", backend="onnxruntime")(img)
    worst: tuple[float, int] | None = None
    for i, (box, cls) in enumerate(zip(ref["boxes"], ref["classes"])):
        dist = np.abs(ours.pred_boxes - box).max(1) + 1e9 * (ours.pred_classes != cls)
        a, b = ref["masks"][i], ours.pred_masks[int(np.argmin(dist))]
        if np.array_equal(a, b):
            continue
        iou = (a & b).sum() / max((a | b).sum(), 1)
        region, where = paste_mask(ref["probs"][i], box, img.shape[:2])
        own = np.zeros_like(a)
        own[where] = region
        print(f"instance {i}: IoU {iou:.4f}, {(a != b).sum()} px differ (areas {a.sum()} / "
              f"{b.sum()}), |soft - 0.5| there <= {np.abs(ref['soft'][i][a != b] - 0.5).max():.3g};"
              f" our pasting of Detectron2's probabilities: {(own != a).sum()} px differ")
        if worst is None or iou < worst[0]:
            worst = (iou, i)
    if worst is not None:
        i = worst[1]
        np.savez_compressed(out, probs=ref["probs"][i], box=ref["boxes"][i],
                            image_hw=np.array(img.shape[:2]), soft=ref["soft"][i],
                            mask=ref["masks"][i])
        print(f"wrote {out} (instance {i})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
