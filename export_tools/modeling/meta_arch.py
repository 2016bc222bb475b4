"""Meta-architectures: the whole graph from the image input to the detection outputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from onnx import TensorProto

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone import Feature, build_backbone
from export_tools.modeling.backbone.build import size_divisibility, square_size
from export_tools.modeling.poolers import PoolerSpec, build_pooler
from export_tools.modeling.proposal_generator.rpn import RPNConfig, build_rpn
from export_tools.modeling.retinanet import build_retinanet
from export_tools.modeling.roi_heads.cascade import build_cascade_box_path
from export_tools.modeling.roi_heads.fast_rcnn import Detections
from export_tools.modeling.roi_heads.keypoint_head import KeypointHeadSpec, build_keypoint_head
from export_tools.modeling.roi_heads.mask_head import MaskHeadSpec, build_mask_head
from export_tools.modeling.roi_heads.standard import (
    BoxPathSpec,
    build_res5_box_path,
    build_standard_box_path,
    res5_transform,
)
from export_tools.modeling.semantic_seg import SemSegSpec, build_sem_seg_head
from export_tools.modeling.weights import WeightStore

IMAGE_INPUT = "image"
META_ARCHITECTURES = ("GeneralizedRCNN", "RetinaNet", "PanopticFPN")
BOX_PATHS = {
    "StandardROIHeads": build_standard_box_path,
    "Res5ROIHeads": build_res5_box_path,
    "CascadeROIHeads": build_cascade_box_path,
}


@dataclass
class GraphOutputs:
    """Named graph outputs; every value is at network resolution."""

    detections: Detections
    extra: dict[str, tuple[Tensor, int, list]] = field(default_factory=dict)


def preprocess(g: GraphBuilder, image: Tensor, cfg) -> tuple[Tensor, Tensor]:
    """Normalise and zero-pad to the size divisibility; returns (padded image, float (H, W))."""
    with g.scope("preprocess"):
        mean = np.asarray(cfg.MODEL.PIXEL_MEAN, np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(cfg.MODEL.PIXEL_STD, np.float32).reshape(1, -1, 1, 1)
        x = g.op("Sub", [image, g.const(mean, "pixel_mean")], hint="centered")
        if np.any(std != 1.0):  # dividing by 1 is exact: left out (MSRA-style models)
            x = g.op("Div", [x, g.const(std, "pixel_std")], hint="normalized")
        hw = g.shape_of(image, 2, 4)
        image_hw = g.cast(hw, TensorProto.FLOAT, hint="image_hw")
        div, square = size_divisibility(cfg), square_size(cfg)
        if div > 1 or square:
            div = max(div, 1)
            target = g.i64([square, square]) if square else hw
            padded = g.op("Mul", [g.op("Div", [g.op("Add", [target, g.i64(div - 1)]),
                                               g.i64(div)]), g.i64(div)])
            extra = g.op("Sub", [padded, hw])
            pads = g.concat([g.i64([0, 0, 0, 0, 0, 0]), extra], axis=0)
            x = g.op("Pad", [x, pads], mode="constant", hint="padded")
        return x, image_hw


def build_generalized_rcnn(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                           image_hw: Tensor, cfg) -> GraphOutputs:
    proposals = build_rpn(g, w, features, image_hw, RPNConfig.from_config(cfg))
    heads = cfg.MODEL.ROI_HEADS.NAME
    if heads not in BOX_PATHS:
        raise NotImplementedError(f"MODEL.ROI_HEADS.NAME={heads} is not supported yet")
    dets = BOX_PATHS[heads](g, w, features, proposals, image_hw, cfg)
    outputs = GraphOutputs(dets)
    if cfg.MODEL.MASK_ON:
        probs = _mask_path(g, w, features, dets, cfg)
        outputs.extra["mask_probs"] = (probs, TensorProto.FLOAT, ["detections", "M", "M"])
    if cfg.MODEL.KEYPOINT_ON:
        heatmaps = build_keypoint_head(g, w, features, dets.boxes,
                                       KeypointHeadSpec.from_config(cfg))
        outputs.extra["keypoint_heatmaps"] = (heatmaps, TensorProto.FLOAT,
                                              ["detections", "keypoints", "S", "S"])
    return outputs


def build_panoptic_fpn(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                       image_hw: Tensor, cfg) -> GraphOutputs:
    """Generalized R-CNN plus the semantic head's logits ``sem_seg`` at its common stride."""
    outputs = build_generalized_rcnn(g, w, features, image_hw, cfg)
    logits = build_sem_seg_head(g, w, features, SemSegSpec.from_config(cfg))
    outputs.extra["sem_seg"] = (logits, TensorProto.FLOAT, [1, "classes", "h", "w"])
    return outputs


def _mask_path(g: GraphBuilder, w: WeightStore, features: dict[str, Feature], dets: Detections,
               cfg) -> Tensor:
    """Mask probabilities ``(D, M, M)`` for the final detections."""
    spec = MaskHeadSpec.from_config(cfg)
    if cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeads":
        box_pooler = BoxPathSpec.from_config(cfg).pooler
        with g.scope("mask_res5"):
            x = res5_transform(g, w, features, dets.boxes, box_pooler, cfg)
        return build_mask_head(g, w, x.tensor, x.channels, dets.classes,
                               replace(spec, num_conv=0))
    m = cfg.MODEL.ROI_MASK_HEAD
    pooler = PoolerSpec(int(m.POOLER_RESOLUTION), int(m.POOLER_SAMPLING_RATIO), m.POOLER_TYPE)
    feats = [features[f] for f in cfg.MODEL.ROI_HEADS.IN_FEATURES]
    with g.scope("mask_pooler"):
        pooled = build_pooler(g, feats, dets.boxes, pooler)
    return build_mask_head(g, w, pooled, feats[0].channels, dets.classes, spec)


def build_model_graph(cfg, w: WeightStore, name: str) -> tuple[GraphBuilder, GraphOutputs]:
    """The complete graph for ``cfg`` with input ``image`` ``(1, 3, H, W)`` float32."""
    g = GraphBuilder(name)
    image = g.add_input(IMAGE_INPUT, TensorProto.FLOAT, [1, len(cfg.MODEL.PIXEL_MEAN),
                                                        "height", "width"])
    x, image_hw = preprocess(g, image, cfg)
    features = build_backbone(g, w, x, cfg)
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch == "RetinaNet":
        outputs = GraphOutputs(build_retinanet(g, w, features, cfg))
    elif arch == "GeneralizedRCNN":
        outputs = build_generalized_rcnn(g, w, features, image_hw, cfg)
    elif arch == "PanopticFPN":
        outputs = build_panoptic_fpn(g, w, features, image_hw, cfg)
    else:
        raise NotImplementedError(f"MODEL.META_ARCHITECTURE={arch} is not supported yet")
    dets = outputs.detections
    g.add_output(dets.boxes, "boxes", TensorProto.FLOAT, ["detections", 4])
    g.add_output(dets.scores, "scores", TensorProto.FLOAT, ["detections"])
    g.add_output(dets.classes, "classes", TensorProto.INT64, ["detections"])
    if dets.ties is not None:
        g.add_output(dets.ties.kept_scores, "kept_scores", TensorProto.FLOAT, ["kept"])
        g.add_output(dets.ties.kept_rank, "kept_rank", TensorProto.INT64, ["detections"])
        g.add_output(dets.ties.num_candidates, "num_candidates", TensorProto.INT64, [1])
    for out_name, (value, elem, shape) in outputs.extra.items():
        g.add_output(value, out_name, elem, shape)
    return g, outputs
