"""``StandardROIHeads`` (FPN) and ``Res5ROIHeads`` (C4): the box path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone import Feature
from export_tools.modeling.backbone.resnet import StageSpec, build_stage, resnet_spec_from_config
from export_tools.modeling.checks import POOLER_TYPES, Problem, one_of
from export_tools.modeling.poolers import PoolerSpec, build_pooler
from export_tools.modeling.registry import (
    ROI_BOX_HEADS,
    ROI_HEADS,
    ROI_KEYPOINT_HEADS,
    ROI_MASK_HEADS,
    Registry,
)
from export_tools.modeling.roi_heads.box_head import BoxHeadSpec, build_box_predictor
from export_tools.modeling.roi_heads.fast_rcnn import (
    BoxInferenceSpec,
    Detections,
    fast_rcnn_inference,
    predict_boxes,
    predict_probs,
)
from export_tools.modeling.weights import WeightStore


@dataclass(frozen=True)
class BoxPathSpec:
    in_features: list[str]
    pooler: PoolerSpec
    agnostic: bool
    weights: tuple[float, ...]
    inference: BoxInferenceSpec

    @classmethod
    def from_config(cls, cfg: Config) -> BoxPathSpec:
        h = cfg.MODEL.ROI_BOX_HEAD
        return cls(list(cfg.MODEL.ROI_HEADS.IN_FEATURES),
                   PoolerSpec(int(h.POOLER_RESOLUTION), int(h.POOLER_SAMPLING_RATIO),
                              h.POOLER_TYPE),
                   bool(h.CLS_AGNOSTIC_BBOX_REG), tuple(h.BBOX_REG_WEIGHTS),
                   BoxInferenceSpec.from_config(cfg))


def pooled_head_problems(registry: Registry, cfg: Config, pooler_key: str,
                         also: tuple[str, ...] = ()) -> Iterator[Problem]:
    """A pooled head's problems: its name, its pooler type, then its own check."""
    name_problems = list(registry.name_problems(cfg, also))
    yield from name_problems
    yield from one_of(cfg, pooler_key, POOLER_TYPES)
    name = cfg.get(registry.key)
    check = registry.entry(name).check if not name_problems and name in registry else None
    if check is not None:
        yield from check(cfg)


def mask_keypoint_problems(cfg: Config, res5: bool = False) -> Iterator[Problem]:
    """The mask head's problems (``MASK_ON``) and the keypoint head's (``KEYPOINT_ON``)."""
    if cfg.get("MODEL.MASK_ON"):
        yield from pooled_head_problems(ROI_MASK_HEADS, cfg, "MODEL.ROI_MASK_HEAD.POOLER_TYPE")
    if cfg.get("MODEL.KEYPOINT_ON"):
        if res5:
            yield Problem(
                "MODEL.KEYPOINT_ON",
                "keypoints need ROI_HEADS.NAME StandardROIHeads or CascadeROIHeads "
                "(Detectron2's Res5ROIHeads has no keypoint head); supported: false",
            )
        yield from pooled_head_problems(ROI_KEYPOINT_HEADS, cfg,
                                        "MODEL.ROI_KEYPOINT_HEAD.POOLER_TYPE")


def standard_roi_heads_problems(cfg: Config) -> Iterator[Problem]:
    yield from pooled_head_problems(ROI_BOX_HEADS, cfg, "MODEL.ROI_BOX_HEAD.POOLER_TYPE")
    yield from mask_keypoint_problems(cfg)


def _res5_roi_heads_problems(cfg: Config) -> Iterator[Problem]:
    # Res5ROIHeads builds no box head: its name may be empty and its settings are not read.
    yield from ROI_BOX_HEADS.name_problems(cfg, also=("",))
    yield from one_of(cfg, "MODEL.ROI_BOX_HEAD.POOLER_TYPE", POOLER_TYPES)
    yield from mask_keypoint_problems(cfg, res5=True)


@ROI_HEADS.register("StandardROIHeads", check=standard_roi_heads_problems)
def build_standard_box_path(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                            proposals: Tensor, image_hw: Tensor, cfg: Config) -> Detections:
    """Pool proposals from FPN levels, run the box head and Fast R-CNN inference."""
    spec = BoxPathSpec.from_config(cfg)
    head = BoxHeadSpec.from_config(cfg)
    feats = [features[f] for f in spec.in_features]
    with g.scope("roi_heads"):
        pooled = build_pooler(g, feats, proposals, spec.pooler)
        x, dim = ROI_BOX_HEADS.entry(head.name).build(g, w, pooled, "roi_heads.box_head",
                                                      feats[0].channels, spec.pooler.resolution,
                                                      head)
        return _predict(g, w, x, dim, "roi_heads.box_predictor", proposals, image_hw, spec)


def _predict(g: GraphBuilder, w: WeightStore, x: Tensor, dim: int, prefix: str,
             proposals: Tensor, image_hw: Tensor, spec: BoxPathSpec) -> Detections:
    k = spec.inference.num_classes
    logits, deltas = build_box_predictor(g, w, x, prefix, dim, k, spec.agnostic)
    num_reg = 1 if spec.agnostic else k
    boxes = predict_boxes(g, deltas, proposals, spec.weights, num_reg)
    probs = predict_probs(g, logits, spec.inference.use_sigmoid)
    return fast_rcnn_inference(g, boxes, probs, image_hw, spec.inference, num_reg)


def res5_stage_spec(cfg: Config) -> StageSpec:
    """The res5 block of a C4 model (3 bottleneck blocks, first stride 2, no dilation)."""
    res5 = resnet_spec_from_config(cfg).stages[3]
    return StageSpec("res5", 3, res5.in_channels, res5.out_channels, res5.bottleneck_channels,
                     first_stride=2, dilation=1)


def res5_transform(g: GraphBuilder, w: WeightStore, features: dict[str, Feature], boxes: Tensor,
                   pooler: PoolerSpec, cfg: Config) -> Feature:
    """``Res5ROIHeads._shared_roi_transform``: pool from res4, then the res5 stage."""
    feat = features[cfg.MODEL.ROI_HEADS.IN_FEATURES[0]]
    pooled = build_pooler(g, [feat], boxes, pooler)
    stage = res5_stage_spec(cfg)
    x = Feature(pooled, feat.channels, 1)
    return build_stage(g, w, x, "roi_heads.res5", stage, resnet_spec_from_config(cfg))


@ROI_HEADS.register("Res5ROIHeads", check=_res5_roi_heads_problems, res5=True)
def build_res5_box_path(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                        proposals: Tensor, image_hw: Tensor, cfg: Config) -> Detections:
    """C4 box path: res5 on pooled proposals, spatial mean, Fast R-CNN predictor."""
    spec = BoxPathSpec.from_config(cfg)
    with g.scope("roi_heads"):
        x = res5_transform(g, w, features, proposals, spec.pooler, cfg)
        mean = g.op("ReduceMean", [x.tensor], axes=[2, 3], keepdims=0, hint="res5_mean")
        return _predict(g, w, mean, x.channels, "roi_heads.box_predictor", proposals, image_hw,
                        spec)
