"""Per-class (batched) non-maximum suppression with ONNX ``NonMaxSuppression``.

Detectron2 calls torchvision's ``batched_nms``: boxes of different categories never suppress each
other. Here every category becomes one ONNX NMS class whose score row keeps only its own boxes
(the others are set to -inf and fall below ``score_threshold``), so the result is exactly a
per-class NMS without the coordinate-offset trick's rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        keep = _ascending(g, _nms_selected(g, boxes, scores, idxs, num_classes, iou_threshold))
        kept_scores = g.gather(scores, keep)
        count = g.shape_of(keep)
        k = count if max_keep is None else g.min_k(count, max_keep)
        _, order = g.topk(kept_scores, k, axis=0)  # ties: lower candidate index first
        return g.gather(keep, order, hint="keep")


@dataclass(frozen=True)
class RankedKeep:
    """Kept boxes in Detectron2's candidate order and the best of them, with what ties need.

    ``keep`` indexes the candidates (ascending: torchvision's ``where(keep_mask)`` order),
    ``kept_scores`` are their scores; ``top`` are positions into ``keep`` of the detections to
    output, sorted by decreasing score (ties by position): the first ``max_keep`` plus any others
    whose score equals the last one's, so that a consumer can break ties exactly as torch does.
    """

    keep: Tensor  # (S,) int64
    kept_scores: Tensor  # (S,)
    top: Tensor  # (T,) int64, T >= min(S, max_keep)


def batched_nms_ranked(g: GraphBuilder, boxes: Tensor, scores: Tensor, idxs: Tensor,
                       num_classes: int, iou_threshold: float, max_keep: int | None) -> RankedKeep:
    """Per-class NMS like :func:`batched_nms`, keeping what exact tie-breaking needs."""
    with g.scope("nms"):
        keep = _ascending(g, _nms_selected(g, boxes, scores, idxs, num_classes, iou_threshold))
        count = g.shape_of(keep)
        kept_scores = g.gather(scores, keep, hint="kept_scores")
        if max_keep is None:
            _, top = g.topk(kept_scores, count, axis=0)
            return RankedKeep(keep, kept_scores, top)
        best, _ = g.topk(kept_scores, g.min_k(count, max_keep), axis=0)
        # Everything scoring at least the k-th best (empty input: nothing).
        last = g.slice(best, [-1], [2**62], [0], hint="kth_score")
        floor = g.op("ReduceMin", [g.concat([last, g.f32([np.inf])], 0)], keepdims=1)
        tied = g.nonzero_1d(g.op("GreaterOrEqual", [kept_scores, floor]), hint="at_least_kth")
        _, order = g.topk(g.gather(kept_scores, tied), g.shape_of(tied), axis=0)
        return RankedKeep(keep, kept_scores, g.gather(tied, order, hint="top"))


def _ascending(g: GraphBuilder, indices: Tensor) -> Tensor:
    """Sort int64 indices ``(S,)`` ascending (torchvision's ``where(keep_mask)`` order)."""
    _, order = g.op("TopK", [indices, g.shape_of(indices)], n_out=2, axis=0, largest=0, sorted=1,
                    hint="ascending")
    return g.gather(indices, order, hint="keep_ascending")


def _nms_selected(g: GraphBuilder, boxes: Tensor, scores: Tensor, idxs: Tensor,
                  num_classes: int, iou_threshold: float) -> Tensor:
    """Candidate indices ``(S,)`` kept by per-class NMS (class-major order)."""
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
    return g.reshape(g.slice(selected, [2], [3], [1]), [-1], hint="kept")
