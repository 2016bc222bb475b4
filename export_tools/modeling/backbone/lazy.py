"""Backbones of LazyConfig models, built from the plain spec under ``cfg.LAZY.BACKBONE``
(see :mod:`export_tools.lazy.backbones`)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.fpn import build_fpn
from export_tools.modeling.backbone.mvit import build_mvit
from export_tools.modeling.backbone.regnet import build_regnet
from export_tools.modeling.backbone.resnet import (
    ResNetSpec,
    StageSpec,
    build_resnet,
)
from export_tools.modeling.backbone.swin import build_swin
from export_tools.modeling.backbone.vit import build_vit, gelu
from export_tools.modeling.checks import Problem
from export_tools.modeling.layers import channel_layer_norm, conv2d, max_pool
from export_tools.modeling.registry import BACKBONES
from export_tools.modeling.weights import WeightStore

LAZY_BACKBONE_NAME = "lazy_backbone"
#: ``LAZY.BACKBONE.kind`` values (the ``_target_`` kinds of export_tools.lazy.targets.BACKBONES)
LAZY_KINDS = ("FPN", "SimpleFeaturePyramid")
#: bottom-up networks under an FPN (``LAZY.BACKBONE.bottom_up.kind``)
LAZY_BOTTOM_UPS = ("ResNet", "RegNet", "MViT", "SwinTransformer")


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
    if up["kind"] == "MViT":
        return build_mvit(g, w, image, prefix, {**up, "out_features": needed})
    if up["kind"] == "SwinTransformer":
        return build_swin(g, w, image, prefix, {**up, "out_features": needed})
    raise NotImplementedError(f"LazyConfig bottom-up {up['kind']}")


def lazy_problems(cfg: Config) -> Iterator[Problem]:
    """A LazyConfig backbone spec (written by export_tools.lazy) of a kind not built here."""
    kind = cfg.get("LAZY.BACKBONE.kind")
    if kind is None:
        yield Problem("LAZY.BACKBONE", "missing: the lazy backbone is built from the spec "
                      "export_tools.lazy writes (read the config with load_lazy_config)")
    elif kind not in LAZY_KINDS:
        yield Problem("LAZY.BACKBONE.kind",
                      f"unsupported value {kind!r}; supported: {', '.join(LAZY_KINDS)}")
    elif kind == "FPN" and (up := cfg.get("LAZY.BACKBONE.bottom_up.kind")) not in LAZY_BOTTOM_UPS:
        yield Problem("LAZY.BACKBONE.bottom_up.kind",
                      f"unsupported value {up!r}; supported: {', '.join(LAZY_BOTTOM_UPS)}")


@BACKBONES.register(LAZY_BACKBONE_NAME, check=lazy_problems,
                    size_divisibility=lambda cfg: lazy_padding(cfg)[0],
                    square_size=lambda cfg: lazy_padding(cfg)[1],
                    lazy_kinds=LAZY_KINDS, head_norms=("LN",))
def build_lazy_backbone(g: GraphBuilder, w: WeightStore, image: Tensor,
                        cfg: Config) -> dict[str, Feature]:
    """A LazyConfig model's FPN (over ResNet, RegNet, MViT or Swin) or ViTDet's
    SimpleFeaturePyramid."""
    spec = cfg.LAZY.BACKBONE
    if spec["kind"] == "SimpleFeaturePyramid":
        return build_simple_feature_pyramid(g, w, image, spec)
    if spec["kind"] != "FPN":
        raise NotImplementedError(f"LazyConfig backbone {spec['kind']}")
    up = spec["bottom_up"]
    needed = sorted(set(spec["in_features"]) | set(up["out_features"]),
                    key=lambda n: up["strides"][n])
    feats = _bottom_up(g, w, image, up, needed)
    top = spec["top_block"] or None
    return build_fpn(g, w, feats, list(spec["in_features"]), spec["out_channels"],
                     spec["norm"], spec["fuse_type"], top)


def _deconv(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int,
            out_ch: int) -> Tensor:
    weight = w.get(f"{prefix}.weight", (in_ch, out_ch, 2, 2))
    bias = w.get(f"{prefix}.bias", (out_ch,))
    return g.op("ConvTranspose", [x, g.const(weight, f"{prefix}.weight"),
                                  g.const(bias, f"{prefix}.bias")],
                kernel_shape=[2, 2], strides=[2, 2], hint="deconv")


def _pyramid_stage(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, dim: int,
                   scale: float, spec: dict) -> Tensor:
    """One ``simfp_N`` stage: resample by ``scale``, then 1x1 and 3x3 convs with the norm."""
    i, ch = 0, dim
    if scale == 4.0:
        x = _deconv(g, w, x, f"{prefix}.0", dim, dim // 2)
        x = channel_layer_norm(g, w, x, f"{prefix}.1", dim // 2) if spec["norm"] == "LN" else \
            _norm_only(spec["norm"], prefix)
        x = _deconv(g, w, gelu(g, x), f"{prefix}.3", dim // 2, dim // 4)
        i, ch = 4, dim // 4
    elif scale == 2.0:
        x, i, ch = _deconv(g, w, x, f"{prefix}.0", dim, dim // 2), 1, dim // 2
    elif scale == 0.5:
        x, i = max_pool(g, x, kernel=2, stride=2, padding=0), 1
    out, norm = spec["out_channels"], spec["norm"]
    x = conv2d(g, w, x, f"{prefix}.{i}", ch, out, 1, norm=norm)
    return conv2d(g, w, x, f"{prefix}.{i + 1}", out, out, 3, padding=1, norm=norm)


def _norm_only(norm: str, prefix: str) -> Tensor:
    raise NotImplementedError(f"{prefix}.1: SimpleFeaturePyramid norm {norm!r} between the "
                              "4x deconvolutions (supported: 'LN')")


def build_simple_feature_pyramid(g: GraphBuilder, w: WeightStore, image: Tensor,
                                 spec) -> dict[str, Feature]:
    """ViTDet's backbone: ViT on the square-padded image, then one stage per scale factor."""
    net = spec["net"]
    x = build_vit(g, w, image, "backbone.net", net, int(spec["square_pad"]))
    feats: dict[str, Feature] = {}
    for scale in spec["scale_factors"]:
        stride = int(net["patch_size"] / scale)
        level = int(math.log2(stride))
        with g.scope(f"simfp_{level}"):
            y = _pyramid_stage(g, w, x, f"backbone.simfp_{level}", net["embed_dim"], scale,
                               spec)
        feats[f"p{level}"] = Feature(y, spec["out_channels"], stride)
    if spec["top_block"] == "maxpool":
        last = max(feats.values(), key=lambda f: f.stride)
        level = int(math.log2(last.stride)) + 1
        feats[f"p{level}"] = Feature(max_pool(g, last.tensor, 1, 2, 0), last.channels,
                                     last.stride * 2)
    return feats
