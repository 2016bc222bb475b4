"""Backbones of LazyConfig models, built from the plain spec under ``cfg.LAZY.BACKBONE``
(see :mod:`export_tools.lazy.backbones`)."""

from __future__ import annotations

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.fpn import build_fpn
from export_tools.modeling.backbone.regnet import build_regnet
from export_tools.modeling.backbone.resnet import (
    ResNetSpec,
    StageSpec,
    build_resnet,
)
from export_tools.modeling.weights import WeightStore

LAZY_BACKBONE_NAME = "lazy_backbone"


def lazy_padding(cfg) -> tuple[int, int]:
    """(size divisibility, square size) of the batched image for a LazyConfig backbone."""
    spec = cfg.LAZY.BACKBONE
    return int(spec["size_divisibility"]), int(spec.get("square_pad", 0))


def _resnet_spec(up: dict) -> ResNetSpec:
    stages = tuple(
        StageSpec(f"res{i + 2}", s["num_blocks"], s["in_channels"], s["out_channels"],
                  s["bottleneck_channels"], s["first_stride"], s["dilation"])
        for i, s in enumerate(up["stages"]))
    groups = {s["num_groups"] for s in up["stages"]}
    in_1x1 = {s["stride_in_1x1"] for s in up["stages"]}
    if len(groups) > 1 or len(in_1x1) > 1:
        raise NotImplementedError("ResNet stages with different num_groups / stride_in_1x1")
    depth = 18 if up["block"] == "basic" else 50
    return ResNetSpec(depth, up["norm"], up["stem_out"], groups.pop(), in_1x1.pop(), stages)


def _bottom_up(g: GraphBuilder, w: WeightStore, image: Tensor, up: dict,
               needed: list[str]) -> dict[str, Feature]:
    prefix = "backbone.bottom_up"
    if up["kind"] == "ResNet":
        return build_resnet(g, w, image, prefix, up["stem_in"], _resnet_spec(up), needed)
    if up["kind"] == "RegNet":
        return build_regnet(g, w, image, prefix, {**up, "out_features": needed})
    raise NotImplementedError(f"LazyConfig bottom-up {up['kind']}")


def build_lazy_backbone(g: GraphBuilder, w: WeightStore, image: Tensor,
                        cfg) -> dict[str, Feature]:
    spec = cfg.LAZY.BACKBONE
    if spec["kind"] != "FPN":
        raise NotImplementedError(f"LazyConfig backbone {spec['kind']}")
    up = spec["bottom_up"]
    needed = sorted(set(spec["in_features"]) | set(up["out_features"]),
                    key=lambda n: up["strides"][n])
    with g.scope("backbone"):
        feats = _bottom_up(g, w, image, up, needed)
        top = spec["top_block"] or None
        return build_fpn(g, w, feats, list(spec["in_features"]), spec["out_channels"],
                         spec["norm"], spec["fuse_type"], top)
