"""Box inference of Fast R-CNN: probabilities, per-class decoding, threshold, NMS, top-k."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.box_regression import apply_deltas, clip_boxes
from export_tools.modeling.nms import RankedKeep, batched_nms_ranked, grid_nms_ranked


@dataclass(frozen=True)
class BoxInferenceSpec:
    num_classes: int
    score_thresh: float
    nms_thresh: float
    detections_per_image: int
    use_sigmoid: bool = False

    @classmethod
    def from_config(cls, cfg: Config) -> BoxInferenceSpec:
        return cls(int(cfg.MODEL.ROI_HEADS.NUM_CLASSES),
                   float(cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST),
                   float(cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST),
                   int(cfg.TEST.DETECTIONS_PER_IMAGE),
                   bool(cfg.MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE))


@dataclass(frozen=True)
class TieInfo:
    """What the runtime needs to order equal scores exactly as Detectron2 (torch) does.

    Detectron2 sorts the boxes kept by NMS with torch's sort; with more than 1000 candidates
    torchvision takes its per-class path whose final sort is not stable, so equal scores come out
    in the order of torch's CPU sort algorithm, which no ONNX operator reproduces.
    """

    kept_scores: Tensor  # (S,) scores of all kept boxes, in candidate order
    kept_rank: Tensor  # (D,) int64 position in ``kept_scores`` of each output detection
    num_candidates: Tensor  # (1,) int64 number of boxes that entered NMS


@dataclass(frozen=True)
class Detections:
    """Graph values of the final detections at network scale, sorted by decreasing score.

    With ``ties`` set, the rows are the best ``DETECTIONS_PER_IMAGE`` plus any further rows whose
    score equals the last one's; the runtime keeps the cap's worth after breaking ties.
    """

    boxes: Tensor  # (D, 4)
    scores: Tensor  # (D,)
    classes: Tensor  # (D,) int64
    ties: TieInfo | None = None


def select_ranked(g: GraphBuilder, boxes: Tensor, scores: Tensor, classes: Tensor,
                  num_classes: int, nms_thresh: float, max_keep: int | None) -> Detections:
    """Per-class NMS on candidates, then the best of them with their tie information."""
    ranked = batched_nms_ranked(g, boxes, scores, classes, num_classes, nms_thresh, max_keep)
    return _detections(g, ranked, boxes, scores, classes)


def _detections(g: GraphBuilder, ranked: RankedKeep, boxes: Tensor, scores: Tensor,
                classes: Tensor) -> Detections:
    """The candidates ``ranked`` keeps, best first, with their tie information."""
    rows = g.gather(ranked.keep, ranked.top, hint="det_rows")
    ties = TieInfo(ranked.kept_scores, ranked.top, g.shape_of(scores))
    return Detections(g.gather(boxes, rows, hint="det_boxes"),
                      g.gather(scores, rows, hint="det_scores"),
                      g.gather(classes, rows, hint="det_classes"), ties)


def predict_probs(g: GraphBuilder, logits: Tensor, use_sigmoid: bool) -> Tensor:
    """``(R, K + 1)`` class probabilities."""
    return g.op("Sigmoid" if use_sigmoid else "Softmax", [logits], hint="probs",
                **({} if use_sigmoid else {"axis": -1}))


def predict_boxes(g: GraphBuilder, deltas: Tensor, proposals: Tensor, weights,
                  num_reg: int) -> Tensor:
    """Decoded boxes ``(R, num_reg, 4)`` for ``deltas (R, 4 * num_reg)``."""
    d = g.reshape(deltas, [0, num_reg, 4], hint="deltas")
    return apply_deltas(g, d, g.unsqueeze(proposals, [1]), weights)


def fast_rcnn_inference(g: GraphBuilder, boxes: Tensor, probs: Tensor, image_hw: Tensor,
                        spec: BoxInferenceSpec, num_reg: int) -> Detections:
    """``boxes (R, num_reg, 4)``, ``probs (R, K + 1)`` -> final detections."""
    k = spec.num_classes
    with g.scope("box_inference"):
        boxes = clip_boxes(g, boxes, image_hw)
        scores = g.slice(probs, [0], [k], [1], hint="fg_scores")  # drop background: (R, K)
        # Candidates: every (proposal, class) above the threshold, row-major like nonzero().
        candidate = g.op("Greater", [scores, g.f32(spec.score_thresh)], hint="candidate")
        nz = g.op("NonZero", [candidate])
        rows = g.reshape(g.slice(nz, [0], [1], [0]), [-1], hint="rows")
        cls = g.reshape(g.slice(nz, [1], [2], [0]), [-1], hint="classes")
        flat = g.op("Add", [g.op("Mul", [rows, g.i64(k)]), cls], hint="flat_idx")
        cand_scores = g.gather(g.reshape(scores, [-1]), flat, hint="cand_scores")
        flat_boxes = g.reshape(boxes, [-1, 4])
        cand_boxes = g.gather(flat_boxes, rows if num_reg == 1 else flat, hint="cand_boxes")
        grid = g.op("Where", [candidate, scores, g.f32(-np.inf)], hint="grid_scores")
        nms_boxes = flat_boxes if num_reg == 1 else boxes
        topk = spec.detections_per_image if spec.detections_per_image >= 0 else None
        ranked = grid_nms_ranked(g, nms_boxes, grid, candidate, cand_scores, k, num_reg > 1,
                                 spec.nms_thresh, topk)
        return _detections(g, ranked, cand_boxes, cand_scores, cls)
