"""``SemSegFPNHead`` of Panoptic FPN: per-pixel class logits from the FPN levels.

Each level goes through its own stack of 3x3 conv (+ norm) + ReLU, each followed by a bilinear x2
upsampling until it reaches ``COMMON_STRIDE``; the stacks are summed and a 1x1 conv predicts the
logits. The graph stops there, at ``1 / COMMON_STRIDE`` of the padded input: Detectron2's last
bilinear upsampling by the common stride, the crop to the image and the resize to the original
resolution are all linear along each axis, so the runtime applies them as one composed resize
(``daemon.inference.semantic``) without materialising full-resolution logits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone import Feature
from export_tools.modeling.checks import NORMS, Problem, one_of
from export_tools.modeling.layers import conv2d, upsample_bilinear
from export_tools.modeling.registry import SEM_SEG_HEADS
from export_tools.modeling.weights import WeightStore

PREFIX = "sem_seg_head"


@dataclass(frozen=True)
class SemSegSpec:
    in_features: list[str]
    num_classes: int
    conv_dims: int
    common_stride: int
    norm: str

    @classmethod
    def from_config(cls, cfg: Config) -> SemSegSpec:
        h = cfg.MODEL.SEM_SEG_HEAD
        return cls(list(h.IN_FEATURES), int(h.NUM_CLASSES), int(h.CONVS_DIM),
                   int(h.COMMON_STRIDE), h.NORM)


def _scale_head(g: GraphBuilder, w: WeightStore, name: str, feat: Feature,
                spec: SemSegSpec) -> Tensor:
    """One level's conv stack, upsampled to the common stride: ``(1, conv_dims, H/s, W/s)``."""
    length = max(1, int(math.log2(feat.stride) - math.log2(spec.common_stride)))
    upsample = feat.stride != spec.common_stride
    x, ch, index = feat.tensor, feat.channels, 0
    with g.scope(name):
        for _ in range(length):
            x = conv2d(g, w, x, f"{PREFIX}.{name}.{index}", ch, spec.conv_dims, 3, padding=1,
                       norm=spec.norm, relu=True)
            ch, index = spec.conv_dims, index + 1
            if upsample:
                x = upsample_bilinear(g, x, 2.0, hint="up2x")
                index += 1  # the nn.Upsample module takes a slot in the Sequential
    return x


def _fpn_head_problems(cfg: Config) -> Iterator[Problem]:
    yield from one_of(cfg, "MODEL.SEM_SEG_HEAD.NORM", NORMS)


@SEM_SEG_HEADS.register("SemSegFPNHead", check=_fpn_head_problems)
def build_sem_seg_head(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                       spec: SemSegSpec) -> Tensor:
    """Logits ``(1, C, H'/s, W'/s)`` at the common stride ``s`` of the padded input ``H' x W'``."""
    feats = sorted(((name, features[name]) for name in spec.in_features),
                   key=lambda item: item[1].stride)
    with g.scope("sem_seg_head"):
        total: Tensor | None = None
        for name, feat in feats:
            y = _scale_head(g, w, name, feat, spec)
            total = y if total is None else g.op("Add", [total, y], hint="sum")
        return conv2d(g, w, total, f"{PREFIX}.predictor", spec.conv_dims, spec.num_classes, 1)
