"""Per-class (batched) non-maximum suppression with ONNX ``NonMaxSuppression``.

Detectron2 calls torchvision's ``batched_nms``: boxes of different categories never suppress each
other. Here every category becomes one ONNX NMS class whose score row keeps only its own boxes
(the others are set to -inf and fall below ``score_threshold``), so the result is exactly a
per-class NMS without the coordinate-offset trick's rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

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
        return rank_kept(g, keep, scores, max_keep)


def rank_kept(g: GraphBuilder, keep: Tensor, scores: Tensor, max_keep: int | None) -> RankedKeep:
    """:class:`RankedKeep` of the kept candidates ``keep`` (ascending) with ``scores (N,)``."""
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


def grid_nms_ranked(g: GraphBuilder, boxes: Tensor, grid_scores: Tensor, candidate: Tensor,
                    cand_scores: Tensor, num_classes: int, per_class_boxes: bool,
                    iou_threshold: float, max_keep: int | None) -> RankedKeep:
    """Per-class NMS of Fast R-CNN's (proposal, class) candidates, laid out as a grid.

    A class's candidates come from distinct proposals, so NMS runs on the ``(K, R)`` score grid
    (ONNX NMS's own classes, or batches when each class has its own boxes) instead of on a
    ``(K, N)`` row per class of all ``N`` candidates: memory ``K x R``, not ``K x N`` (LVIS:
    1203 classes and up to 1.2 M candidates, a ``(K, N)`` layout needed over 20 GB).
    The kept boxes are the same as :func:`batched_nms_ranked`'s on the candidate list.

    Args:
        boxes: ``(R, 4)`` shared by every class, or ``(R, K, 4)`` one per class
            (``per_class_boxes``).
        grid_scores: ``(R, K)`` scores, ``-inf`` where ``candidate`` is false.
        candidate: ``(R, K)`` bool, the candidates (row-major, as ``NonZero`` lists them).
        cand_scores: ``(N,)`` the candidates' scores in that order.
    """
    with g.scope("nms"):
        flat = _grid_selected(g, boxes, grid_scores, num_classes, per_class_boxes,
                              iou_threshold)
        # a candidate's position in the row-major list: how many candidates precede it
        mask = g.cast(g.reshape(candidate, [-1]), TensorProto.INT64, hint="cand_mask")
        position = g.op("Sub", [g.op("CumSum", [mask, g.i64(0)]), g.i64(1)], hint="cand_pos")
        keep = _ascending(g, g.gather(position, flat, hint="kept_pos"))
        return rank_kept(g, keep, cand_scores, max_keep)


def _grid_selected(g: GraphBuilder, boxes: Tensor, grid_scores: Tensor, num_classes: int,
                   per_class_boxes: bool, iou_threshold: float) -> Tensor:
    """Row-major flat indices ``r * K + c`` ``(S,)`` of the grid cells NMS keeps."""
    by_class = g.op("Transpose", [grid_scores], perm=[1, 0], hint="class_scores")  # (K, R)
    if per_class_boxes:  # one NMS batch per class: boxes (K, R, 4), scores (K, 1, R)
        nms_boxes = g.op("Transpose", [boxes], perm=[1, 0, 2], hint="class_boxes")
        nms_scores, class_col = g.unsqueeze(by_class, [1]), 0
    else:  # one batch, K NMS classes over the same boxes (1, R, 4), scores (1, K, R)
        nms_boxes, nms_scores, class_col = g.unsqueeze(boxes, [0]), g.unsqueeze(by_class, [0]), 1
    selected = _onnx_nms(g, nms_boxes, nms_scores, iou_threshold)
    cls = g.reshape(g.slice(selected, [class_col], [class_col + 1], [1]), [-1], hint="kept_cls")
    row = g.reshape(g.slice(selected, [2], [3], [1]), [-1], hint="kept_row")
    return g.op("Add", [g.op("Mul", [row, g.i64(num_classes)]), cls], hint="kept_flat")


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
    selected = _onnx_nms(g, g.unsqueeze(boxes, [0]), g.unsqueeze(class_scores, [0]),
                         iou_threshold)
    return g.reshape(g.slice(selected, [2], [3], [1]), [-1], hint="kept")


def _onnx_nms(g: GraphBuilder, boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """ONNX ``NonMaxSuppression`` keeping every box it can (no cap; ``-inf`` scores dropped):
    ``boxes (B, N, 4)`` xyxy, ``scores (B, C, N)`` -> ``(S, 3)`` rows ``batch, class, box``."""
    return g.op("NonMaxSuppression", [boxes, scores, g.i64([2**31 - 1]), g.f32([iou_threshold]),
                                      g.f32([_LOWEST])], center_point_box=0)
