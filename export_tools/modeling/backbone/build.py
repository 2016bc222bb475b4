"""Backbone selection from ``MODEL.BACKBONE.NAME``."""

from __future__ import annotations

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.fpn import build_fpn
from export_tools.modeling.backbone.lazy import (
    LAZY_BACKBONE_NAME,
    build_lazy_backbone,
    lazy_padding,
)
from export_tools.modeling.backbone.resnet import build_resnet, resnet_spec_from_config
from export_tools.modeling.weights import WeightStore

FPN_BACKBONES = {
    "build_resnet_fpn_backbone": "maxpool",
    "build_retinanet_resnet_fpn_backbone": "p6p7",
}
BACKBONES = ("build_resnet_backbone", *FPN_BACKBONES)


def size_divisibility(cfg) -> int:
    """Padding multiple Detectron2 applies to the batched image (FPN: stride of its last input)."""
    if cfg.MODEL.BACKBONE.NAME in FPN_BACKBONES:
        return 32
    if cfg.MODEL.BACKBONE.NAME == LAZY_BACKBONE_NAME:
        return lazy_padding(cfg)[0]
    return 0


def square_size(cfg) -> int:
    """Side of the square the batched image is padded to (0: none; ViTDet's ``square_pad``)."""
    return lazy_padding(cfg)[1] if cfg.MODEL.BACKBONE.NAME == LAZY_BACKBONE_NAME else 0


def build_backbone(g: GraphBuilder, w: WeightStore, image: Tensor, cfg) -> dict[str, Feature]:
    """Normalised, padded image ``(1, C, H', W')`` -> named features (``res4`` or ``p2..p6``)."""
    name = cfg.MODEL.BACKBONE.NAME
    if name == LAZY_BACKBONE_NAME:
        return build_lazy_backbone(g, w, image, cfg)
    spec = resnet_spec_from_config(cfg)
    in_ch = len(cfg.MODEL.PIXEL_MEAN)
    with g.scope("backbone"):
        if name == "build_resnet_backbone":
            return build_resnet(g, w, image, "backbone", in_ch, spec,
                                list(cfg.MODEL.RESNETS.OUT_FEATURES))
        fpn_in = list(cfg.MODEL.FPN.IN_FEATURES)
        bottom_needed = sorted(set(fpn_in) | set(cfg.MODEL.RESNETS.OUT_FEATURES))
        bottom_up = build_resnet(g, w, image, "backbone.bottom_up", in_ch, spec, bottom_needed)
        return build_fpn(g, w, bottom_up, fpn_in, cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.FPN.NORM,
                         cfg.MODEL.FPN.FUSE_TYPE, FPN_BACKBONES[name])
