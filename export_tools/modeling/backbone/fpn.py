"""Feature Pyramid Network on a ResNet (``build_resnet_fpn_backbone`` and the RetinaNet variant)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.checks import FPN_NORMS, Problem, one_of
from export_tools.modeling.layers import conv2d, max_pool
from export_tools.modeling.weights import WeightStore

FUSE_TYPES = ("sum", "avg")


def fpn_problems(cfg: Config) -> Iterator[Problem]:
    """The ``MODEL.FPN`` settings this FPN cannot build."""
    yield from one_of(cfg, "MODEL.FPN.FUSE_TYPE", FUSE_TYPES)
    yield from one_of(cfg, "MODEL.FPN.NORM", FPN_NORMS)


def _upsample2x(g: GraphBuilder, x: Tensor) -> Tensor:
    """``F.interpolate(x, scale_factor=2, mode="nearest")``."""
    scales = g.f32([1.0, 1.0, 2.0, 2.0], "scale2x")
    return g.op("Resize", [x, None, scales], mode="nearest",
                coordinate_transformation_mode="asymmetric", nearest_mode="floor", hint="up2x")


def build_fpn(
    g: GraphBuilder,
    w: WeightStore,
    bottom_up: dict[str, Feature],
    in_features: list[str],
    out_channels: int,
    norm: str,
    fuse_type: str,
    top_block: str | None,
) -> dict[str, Feature]:
    """Top-down pathway with lateral connections; returns ``p2..p6`` (or ``p3..p7``).

    ``top_block`` is ``"maxpool"`` (LastLevelMaxPool, p6 from p5) or ``"p6p7"`` (LastLevelP6P7 from
    res5) or None.
    """
    feats = [bottom_up[f] for f in in_features]
    levels = [int(math.log2(f.stride)) for f in feats]
    outputs: list[Tensor] = []
    prev: Tensor | None = None
    with g.scope("fpn"):
        for feat, lvl in reversed(list(zip(feats, levels))):
            lateral = conv2d(g, w, feat.tensor, f"backbone.fpn_lateral{lvl}", feat.channels,
                             out_channels, 1, norm=norm)
            if prev is not None:
                lateral = g.op("Add", [lateral, _upsample2x(g, prev)], hint="topdown")
                if fuse_type == "avg":
                    lateral = g.op("Div", [lateral, g.f32(2.0)], hint="avg")
            prev = lateral
            outputs.insert(0, conv2d(g, w, lateral, f"backbone.fpn_output{lvl}", out_channels,
                                     out_channels, 3, padding=1, norm=norm))
    result = {f"p{lvl}": Feature(t, out_channels, 2**lvl) for t, lvl in zip(outputs, levels)}
    last = levels[-1]
    if top_block == "maxpool":
        p = max_pool(g, result[f"p{last}"].tensor, kernel=1, stride=2, padding=0)
        result[f"p{last + 1}"] = Feature(p, out_channels, 2 ** (last + 1))
    elif top_block == "p6p7":
        result.update(_p6p7(g, w, bottom_up, last, out_channels))
    return result


def _p6p7(g: GraphBuilder, w: WeightStore, bottom_up: dict[str, Feature], last: int,
          out_channels: int) -> dict[str, Feature]:
    """LastLevelP6P7 on res5: p6 = conv3x3/2(res5); p7 = conv3x3/2(relu(p6))."""
    src = bottom_up["res5"]
    p6 = conv2d(g, w, src.tensor, "backbone.top_block.p6", src.channels, out_channels, 3,
                stride=2, padding=1)
    p7 = conv2d(g, w, g.op("Relu", [p6]), "backbone.top_block.p7", out_channels, out_channels,
                3, stride=2, padding=1)
    return {
        f"p{last + 1}": Feature(p6, out_channels, 2 ** (last + 1)),
        f"p{last + 2}": Feature(p7, out_channels, 2 ** (last + 2)),
    }
