"""Per-class (batched) non-maximum suppression with ONNX ``NonMaxSuppression``.

Detectron2 calls torchvision's ``batched_nms``: boxes of different categories never suppress each
other. Here every category becomes one ONNX NMS class whose score row keeps only its own boxes
(the others are set to -inf and fall below ``score_threshold``), so the result is exactly a
per-class NMS without the coordinate-offset trick's rounding.
"""

from __future__ import annotations

import numpy as np

from export_tools.graph import GraphBuilder, Tensor

_LOWEST = float(np.finfo(np.float32).min)


def batched_nms(g: GraphBuilder, boxes: Tensor, scores: Tensor, idxs: Tensor, num_classes: int,
                iou_threshold: float, max_keep: int | None = None) -> Tensor:
    """Indices ``(S,)`` of kept boxes sorted by decreasing score (at most ``max_keep``).

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        idxs: ``(N,)`` int64 category of each box, in ``[0, num_classes)``.
    """
    with g.scope("nms"):
        classes = g.i64(np.arange(num_classes).reshape(-1, 1), "nms_classes")
        member = g.op("Equal", [classes, g.unsqueeze(idxs, [0])])  # (C, N)
        neg_inf = g.f32(-np.inf)
        class_scores = g.op("Where", [member, g.unsqueeze(scores, [0]), neg_inf])  # (C, N)
        selected = g.op(
            "NonMaxSuppression",
            [
                g.unsqueeze(boxes, [0]),
                g.unsqueeze(class_scores, [0]),
                g.i64([2**31 - 1]),
                g.f32([iou_threshold]),
                g.f32([_LOWEST]),
            ],
            center_point_box=0,
        )
        keep = g.reshape(g.slice(selected, [2], [3], [1]), [-1], hint="kept")
        kept_scores = g.gather(scores, keep)
        count = g.shape_of(keep)
        k = count if max_keep is None else g.min_k(count, max_keep)
        _, order = g.topk(kept_scores, k, axis=0)
        return g.gather(keep, order, hint="keep")
