"""``CascadeROIHeads``: the box path of Cascade R-CNN at inference.

Each stage pools its own proposals, runs its own box head and class-agnostic predictor (with its
own box-regression weights); the next stage's proposals are this stage's decoded boxes, clipped to
the image. The class probabilities of all stages are averaged, the boxes come from the last stage,
and Fast R-CNN inference (threshold, per-class NMS, top-k) runs once on the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from export_tools.config import Config
from export_tools.errors import ConfigError
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone import Feature
from export_tools.modeling.box_regression import clip_boxes
from export_tools.modeling.poolers import build_pooler
from export_tools.modeling.registry import ROI_BOX_HEADS, ROI_HEADS
from export_tools.modeling.roi_heads.box_head import BoxHeadSpec, build_box_predictor
from export_tools.modeling.roi_heads.fast_rcnn import (
    Detections,
    fast_rcnn_inference,
    predict_boxes,
    predict_probs,
)
from export_tools.modeling.roi_heads.standard import BoxPathSpec, standard_roi_heads_problems
from export_tools.modeling.weights import WeightStore


@dataclass(frozen=True)
class CascadeSpec:
    box_path: BoxPathSpec
    head: BoxHeadSpec
    stage_weights: tuple[tuple[float, ...], ...]

    @property
    def num_stages(self) -> int:
        return len(self.stage_weights)

    @classmethod
    def from_config(cls, cfg: Config) -> CascadeSpec:
        c = cfg.MODEL.ROI_BOX_CASCADE_HEAD
        weights = tuple(tuple(float(v) for v in wt) for wt in c.BBOX_REG_WEIGHTS)
        if len(weights) != len(c.IOUS) or not weights:
            raise ConfigError(
                f"needs one weight tuple per stage: {len(weights)} weight tuples for "
                f"{len(c.IOUS)} IOUS", key="MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS",
                file=getattr(cfg, "source", None))
        if not cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG:
            raise ConfigError("CascadeROIHeads needs class-agnostic box regression (true), as in "
                              "Detectron2", key="MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG",
                              file=getattr(cfg, "source", None))
        return cls(BoxPathSpec.from_config(cfg), BoxHeadSpec.from_config(cfg), weights)


def _run_stage(g: GraphBuilder, w: WeightStore, feats: list[Feature], proposals: Tensor,
               stage: int, spec: CascadeSpec) -> tuple[Tensor, Tensor]:
    """One stage on ``proposals (R, 4)``: class probabilities ``(R, K + 1)``, boxes ``(R, 4)``."""
    path = spec.box_path
    with g.scope(f"stage{stage}"):
        pooled = build_pooler(g, feats, proposals, path.pooler)
        build_head = ROI_BOX_HEADS.entry(spec.head.name).build
        x, dim = build_head(g, w, pooled, f"roi_heads.box_head.{stage}", feats[0].channels,
                            path.pooler.resolution, spec.head)
        logits, deltas = build_box_predictor(g, w, x, f"roi_heads.box_predictor.{stage}", dim,
                                             path.inference.num_classes, agnostic=True)
        probs = predict_probs(g, logits, path.inference.use_sigmoid)
        boxes = predict_boxes(g, deltas, proposals, spec.stage_weights[stage], 1)
        return probs, g.reshape(boxes, [-1, 4], hint="stage_boxes")


@ROI_HEADS.register("CascadeROIHeads", check=standard_roi_heads_problems)
def build_cascade_box_path(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                           proposals: Tensor, image_hw: Tensor, cfg: Config) -> Detections:
    """RPN proposals ``(P, 4)`` -> final detections of the cascade."""
    spec = CascadeSpec.from_config(cfg)
    feats = [features[f] for f in spec.box_path.in_features]
    with g.scope("roi_heads"):
        probs_sum: Tensor | None = None
        boxes = proposals
        for stage in range(spec.num_stages):
            if stage > 0:
                boxes = clip_boxes(g, boxes, image_hw)
            probs, boxes = _run_stage(g, w, feats, boxes, stage, spec)
            probs_sum = probs if probs_sum is None else g.op("Add", [probs_sum, probs])
        scores = g.op("Mul", [probs_sum, g.f32(1.0 / spec.num_stages)], hint="mean_probs")
        return fast_rcnn_inference(g, g.unsqueeze(boxes, [1]), scores, image_hw,
                                   spec.box_path.inference, 1)
