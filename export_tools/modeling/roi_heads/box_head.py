"""``FastRCNNConvFCHead`` and the ``FastRCNNOutputLayers`` predictor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.checks import NORMS, Problem, one_of
from export_tools.modeling.layers import conv2d, linear
from export_tools.modeling.registry import ROI_BOX_HEADS
from export_tools.modeling.weights import WeightStore


@dataclass(frozen=True)
class BoxHeadSpec:
    num_conv: int
    conv_dim: int
    num_fc: int
    fc_dim: int
    norm: str
    name: str

    @classmethod
    def from_config(cls, cfg: Config) -> BoxHeadSpec:
        h = cfg.MODEL.ROI_BOX_HEAD
        return cls(int(h.NUM_CONV), int(h.CONV_DIM), int(h.NUM_FC), int(h.FC_DIM), h.NORM,
                   str(h.NAME))


def _conv_fc_problems(cfg: Config) -> Iterator[Problem]:
    yield from one_of(cfg, "MODEL.ROI_BOX_HEAD.NORM", NORMS)


@ROI_BOX_HEADS.register("FastRCNNConvFCHead", check=_conv_fc_problems)
def build_box_head(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int,
                   resolution: int, spec: BoxHeadSpec) -> tuple[Tensor, int]:
    """Pooled ``(R, C, S, S)`` -> box features ``(R, D)``; returns the tensor and ``D``."""
    ch = in_ch
    for k in range(spec.num_conv):
        x = conv2d(g, w, x, f"{prefix}.conv{k + 1}", ch, spec.conv_dim, 3, padding=1,
                   norm=spec.norm, relu=True)
        ch = spec.conv_dim
    dim = ch * resolution * resolution
    if spec.num_fc:
        x = g.op("Flatten", [x], axis=1, hint="flatten")
        for k in range(spec.num_fc):
            x = linear(g, w, x, f"{prefix}.fc{k + 1}", dim, spec.fc_dim, relu=True)
            dim = spec.fc_dim
    return x, dim


def build_box_predictor(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_dim: int,
                        num_classes: int, agnostic: bool) -> tuple[Tensor, Tensor]:
    """Class logits ``(R, K + 1)`` and box deltas ``(R, 4)`` or ``(R, 4K)``."""
    logits = linear(g, w, x, f"{prefix}.cls_score", in_dim, num_classes + 1)
    num_reg = 1 if agnostic else num_classes
    deltas = linear(g, w, x, f"{prefix}.bbox_pred", in_dim, num_reg * 4)
    return logits, deltas
