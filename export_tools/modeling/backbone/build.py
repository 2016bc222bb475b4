"""The registered backbones (``MODEL.BACKBONE.NAME``) and the backbone a config selects."""

from __future__ import annotations

from collections.abc import Iterator

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.fpn import build_fpn, fpn_problems
from export_tools.modeling.backbone.resnet import (
    build_resnet,
    resnet_problems,
    resnet_spec_from_config,
)
from export_tools.modeling.checks import Problem
from export_tools.modeling.registry import BACKBONES
from export_tools.modeling.weights import WeightStore


def size_divisibility(cfg: Config) -> int:
    """Padding multiple Detectron2 applies to the batched image (FPN: stride of its last input)."""
    return int(BACKBONES.lookup(cfg).attrs.get("size_divisibility", 0))


def build_backbone(g: GraphBuilder, w: WeightStore, image: Tensor,
                   cfg: Config) -> dict[str, Feature]:
    """Normalised, padded image ``(1, C, H', W')`` -> named features (``res4`` or ``p2..p6``)."""
    build = BACKBONES.lookup(cfg).build
    with g.scope("backbone"):
        return build(g, w, image, cfg)


@BACKBONES.register("build_resnet_backbone", check=resnet_problems)
def build_resnet_backbone(g: GraphBuilder, w: WeightStore, image: Tensor,
                          cfg: Config) -> dict[str, Feature]:
    """ResNet / ResNeXt alone (C4 models): the ``MODEL.RESNETS.OUT_FEATURES`` stages."""
    return build_resnet(g, w, image, "backbone", len(cfg.MODEL.PIXEL_MEAN),
                        resnet_spec_from_config(cfg), list(cfg.MODEL.RESNETS.OUT_FEATURES))


def _resnet_fpn_problems(cfg: Config) -> Iterator[Problem]:
    yield from resnet_problems(cfg)
    yield from fpn_problems(cfg)


def _resnet_fpn(g: GraphBuilder, w: WeightStore, image: Tensor, cfg: Config,
                top_block: str) -> dict[str, Feature]:
    spec = resnet_spec_from_config(cfg)
    fpn_in = list(cfg.MODEL.FPN.IN_FEATURES)
    bottom_needed = sorted(set(fpn_in) | set(cfg.MODEL.RESNETS.OUT_FEATURES))
    bottom_up = build_resnet(g, w, image, "backbone.bottom_up", len(cfg.MODEL.PIXEL_MEAN), spec,
                             bottom_needed)
    return build_fpn(g, w, bottom_up, fpn_in, cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.FPN.NORM,
                     cfg.MODEL.FPN.FUSE_TYPE, top_block)


@BACKBONES.register("build_resnet_fpn_backbone", check=_resnet_fpn_problems,
                    size_divisibility=32)
def build_resnet_fpn_backbone(g: GraphBuilder, w: WeightStore, image: Tensor,
                              cfg: Config) -> dict[str, Feature]:
    """ResNet + FPN with a max-pooled ``p6`` (R-CNN models)."""
    return _resnet_fpn(g, w, image, cfg, "maxpool")


@BACKBONES.register("build_retinanet_resnet_fpn_backbone", check=_resnet_fpn_problems,
                    size_divisibility=32)
def build_retinanet_resnet_fpn_backbone(g: GraphBuilder, w: WeightStore, image: Tensor,
                                        cfg: Config) -> dict[str, Feature]:
    """ResNet + FPN with ``p6`` and ``p7`` convolved from ``res5`` (RetinaNet)."""
    return _resnet_fpn(g, w, image, cfg, "p6p7")
