"""Meta-architectures: the whole graph from the image input to the detection outputs.

Importing this module imports (and so registers) every builder of
:mod:`export_tools.modeling.registry`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
from onnx import TensorProto, helper

from export_tools.config import Config, ConfigError
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone import Feature, build_backbone
from export_tools.modeling.backbone.build import size_divisibility, square_size
from export_tools.modeling.checks import NORMS, Problem, one_of
from export_tools.modeling.poolers import PoolerSpec, build_pooler
from export_tools.modeling.proposal_generator.rpn import build_rpn_proposals  # noqa: F401 (registers)
from export_tools.modeling.registry import (
    META_ARCHS,
    PROPOSAL_GENERATORS,
    ROI_HEADS,
    ROI_KEYPOINT_HEADS,
    ROI_MASK_HEADS,
    SEM_SEG_HEADS,
)
from export_tools.modeling.retinanet import build_retinanet
from export_tools.modeling.roi_heads.cascade import build_cascade_box_path  # noqa: F401 (registers)
from export_tools.modeling.roi_heads.fast_rcnn import Detections
from export_tools.modeling.roi_heads.keypoint_head import KeypointHeadSpec
from export_tools.modeling.roi_heads.mask_head import MaskHeadSpec
from export_tools.modeling.roi_heads.standard import BoxPathSpec, res5_transform
from export_tools.modeling.semantic_seg import SemSegSpec
from export_tools.modeling.weights import WeightStore

IMAGE_INPUT = "image"


@dataclass
class GraphOutputs:
    """Named graph outputs; every value is at network resolution."""

    detections: Detections
    extra: dict[str, tuple[Tensor, int, list]] = field(default_factory=dict)


def preprocess(g: GraphBuilder, image: Tensor, cfg: Config) -> tuple[Tensor, Tensor]:
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


def _rcnn_problems(cfg: Config) -> Iterator[Problem]:
    yield from PROPOSAL_GENERATORS.problems(cfg)
    yield from ROI_HEADS.problems(cfg)


@META_ARCHS.register("GeneralizedRCNN", check=_rcnn_problems)
def build_generalized_rcnn(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                           image_hw: Tensor, cfg: Config) -> GraphOutputs:
    proposals = PROPOSAL_GENERATORS.lookup(cfg).build(g, w, features, image_hw, cfg)
    dets = ROI_HEADS.lookup(cfg).build(g, w, features, proposals, image_hw, cfg)
    outputs = GraphOutputs(dets)
    if cfg.MODEL.MASK_ON:
        probs = _mask_path(g, w, features, dets, cfg)
        outputs.extra["mask_probs"] = (probs, TensorProto.FLOAT, ["detections", "M", "M"])
    if cfg.MODEL.KEYPOINT_ON:
        heatmaps = ROI_KEYPOINT_HEADS.lookup(cfg).build(g, w, features, dets.boxes,
                                                        KeypointHeadSpec.from_config(cfg))
        outputs.extra["keypoint_heatmaps"] = (heatmaps, TensorProto.FLOAT,
                                              ["detections", "keypoints", "S", "S"])
    return outputs


def _retinanet_problems(cfg: Config) -> Iterator[Problem]:
    yield from one_of(cfg, "MODEL.RETINANET.NORM", NORMS)


@META_ARCHS.register("RetinaNet", check=_retinanet_problems)
def build_retinanet_arch(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                         image_hw: Tensor, cfg: Config) -> GraphOutputs:
    """RetinaNet's dense detector on the backbone's features."""
    return GraphOutputs(build_retinanet(g, w, features, cfg))


def _panoptic_problems(cfg: Config) -> Iterator[Problem]:
    yield from _rcnn_problems(cfg)
    yield from SEM_SEG_HEADS.problems(cfg)


@META_ARCHS.register("PanopticFPN", check=_panoptic_problems)
def build_panoptic_fpn(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                       image_hw: Tensor, cfg: Config) -> GraphOutputs:
    """Generalized R-CNN plus the semantic head's logits ``sem_seg`` at its common stride."""
    outputs = build_generalized_rcnn(g, w, features, image_hw, cfg)
    logits = SEM_SEG_HEADS.lookup(cfg).build(g, w, features, SemSegSpec.from_config(cfg))
    outputs.extra["sem_seg"] = (logits, TensorProto.FLOAT, [1, "classes", "h", "w"])
    return outputs


def _proposal_problems(cfg: Config) -> Iterator[Problem]:
    yield from PROPOSAL_GENERATORS.problems(cfg)


@META_ARCHS.register("ProposalNetwork", check=_proposal_problems)
def build_proposal_network(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                           image_hw: Tensor, cfg: Config) -> GraphOutputs:
    """The RPN's proposals as Detectron2's ``ProposalNetwork`` returns them: ``boxes`` are the
    post-NMS top-k proposals, ``objectness_logits`` their logits; ``scores`` (their sigmoid)
    and ``classes`` (all 0, the one class "object") keep the detection outputs' contract."""
    scored = PROPOSAL_GENERATORS.lookup(cfg).attrs.get("scored")
    if scored is None:
        raise ConfigError("this proposal generator cannot give objectness scores",
                          key=PROPOSAL_GENERATORS.key, file=cfg.source)
    boxes, logits = scored(g, w, features, image_hw, cfg)
    with g.scope("proposals"):
        scores = g.op("Sigmoid", [logits], hint="objectness")
        classes = g.op("Mul", [g.cast(logits, TensorProto.INT64, hint="zero"), g.i64(0)],
                       hint="classes")
    outputs = GraphOutputs(Detections(boxes, scores, classes))
    outputs.extra["objectness_logits"] = (logits, TensorProto.FLOAT, ["detections"])
    return outputs


def _semantic_problems(cfg: Config) -> Iterator[Problem]:
    yield from SEM_SEG_HEADS.problems(cfg)


@META_ARCHS.register("SemanticSegmentor", check=_semantic_problems)
def build_semantic_segmentor(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                             image_hw: Tensor, cfg: Config) -> GraphOutputs:
    """The semantic head's logits ``sem_seg`` at its common stride, and no detections."""
    logits = SEM_SEG_HEADS.lookup(cfg).build(g, w, features, SemSegSpec.from_config(cfg))
    with g.scope("no_detections"):
        empty = _no_detections(g, logits)
    outputs = GraphOutputs(empty)
    outputs.extra["sem_seg"] = (logits, TensorProto.FLOAT, [1, "classes", "h", "w"])
    return outputs


def _no_detections(g: GraphBuilder, like: Tensor) -> Detections:
    """Zero-row detection outputs, computed from ``like``'s shape: constant empty outputs come
    back from OpenVINO as scalars."""
    rows = g.op("Mul", [g.shape_of(like, 0, 1), g.i64(0)], hint="zero_rows")

    def zeros(dims: list[Tensor], elem: int, hint: str) -> Tensor:
        value = helper.make_tensor("value", elem, [1], [0])
        return g.op("ConstantOfShape", [g.concat(dims, 0)], hint=hint, value=value)

    return Detections(zeros([rows, g.i64([4])], TensorProto.FLOAT, "boxes"),
                      zeros([rows], TensorProto.FLOAT, "scores"),
                      zeros([rows], TensorProto.INT64, "classes"))


def _mask_path(g: GraphBuilder, w: WeightStore, features: dict[str, Feature], dets: Detections,
               cfg: Config) -> Tensor:
    """Mask probabilities ``(D, M, M)`` for the final detections."""
    spec = MaskHeadSpec.from_config(cfg)
    build_mask_head = ROI_MASK_HEADS.lookup(cfg).build
    if ROI_HEADS.lookup(cfg).attrs.get("res5"):
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


def build_model_graph(cfg: Config, w: WeightStore,
                      name: str) -> tuple[GraphBuilder, GraphOutputs]:
    """The complete graph for ``cfg`` with input ``image`` ``(1, 3, H, W)`` float32."""
    build_arch = META_ARCHS.lookup(cfg).build
    g = GraphBuilder(name)
    image = g.add_input(IMAGE_INPUT, TensorProto.FLOAT, [1, len(cfg.MODEL.PIXEL_MEAN),
                                                        "height", "width"])
    x, image_hw = preprocess(g, image, cfg)
    features = build_backbone(g, w, x, cfg)
    outputs = build_arch(g, w, features, image_hw, cfg)
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
