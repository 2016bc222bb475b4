"""``MaskRCNNConvUpsampleHead`` and ``mask_rcnn_inference`` (per-detection mask probabilities)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.checks import NORMS, Problem, one_of
from export_tools.modeling.layers import conv2d
from export_tools.modeling.registry import ROI_MASK_HEADS
from export_tools.modeling.weights import WeightStore

PREFIX = "roi_heads.mask_head"


@dataclass(frozen=True)
class MaskHeadSpec:
    num_conv: int
    conv_dim: int
    norm: str
    agnostic: bool
    num_classes: int

    @classmethod
    def from_config(cls, cfg: Config) -> MaskHeadSpec:
        m = cfg.MODEL.ROI_MASK_HEAD
        return cls(int(m.NUM_CONV), int(m.CONV_DIM), m.NORM, bool(m.CLS_AGNOSTIC_MASK),
                   int(cfg.MODEL.ROI_HEADS.NUM_CLASSES))


def _conv_upsample_problems(cfg: Config) -> Iterator[Problem]:
    yield from one_of(cfg, "MODEL.ROI_MASK_HEAD.NORM", NORMS)


@ROI_MASK_HEADS.register("MaskRCNNConvUpsampleHead", check=_conv_upsample_problems)
def build_mask_head(g: GraphBuilder, w: WeightStore, x: Tensor, in_ch: int, classes: Tensor,
                    spec: MaskHeadSpec, prefix: str = PREFIX) -> Tensor:
    """Pooled ``(D, C, S, S)`` -> mask probabilities ``(D, 2S, 2S)`` of each detection's class."""
    ch = in_ch
    with g.scope("mask_head"):
        for k in range(spec.num_conv):
            x = conv2d(g, w, x, f"{prefix}.mask_fcn{k + 1}", ch, spec.conv_dim, 3, padding=1,
                       norm=spec.norm, relu=True)
            ch = spec.conv_dim
        x = _deconv2x(g, w, x, f"{prefix}.deconv", ch, spec.conv_dim)
        num_masks = 1 if spec.agnostic else spec.num_classes
        logits = conv2d(g, w, x, f"{prefix}.predictor", spec.conv_dim, num_masks, 1)
        return select_class_probs(g, logits, classes, num_masks)


def _deconv2x(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int,
              out_ch: int) -> Tensor:
    """``ConvTranspose2d(in_ch, out_ch, 2, stride=2)`` + ReLU."""
    weight = w.get(f"{prefix}.weight", (in_ch, out_ch, 2, 2))
    bias = w.get(f"{prefix}.bias", (out_ch,))
    y = g.op("ConvTranspose", [x, g.const(weight, f"{prefix}.weight"),
                               g.const(bias, f"{prefix}.bias")],
             kernel_shape=[2, 2], strides=[2, 2], hint="deconv")
    return g.op("Relu", [y], hint="relu")


def select_class_probs(g: GraphBuilder, logits: Tensor, classes: Tensor, num_masks: int) -> Tensor:
    """``sigmoid(logits[i, classes[i]])``: ``(D, num_masks, M, M)`` -> ``(D, M, M)``."""
    if num_masks == 1:
        return g.op("Sigmoid", [g.squeeze(logits, [1])], hint="mask_probs")
    rows = g.op("Range", [g.const(0, dtype="int64"),
                          g.squeeze(g.shape_of(logits, 0, 1), [0]),
                          g.const(1, dtype="int64")])
    flat_idx = g.op("Add", [g.op("Mul", [rows, g.i64(num_masks)]), classes])
    m = g.shape_of(logits, 2, 4)
    flat = g.op("Reshape", [logits, g.concat([g.i64([-1]), m], 0)])
    return g.op("Sigmoid", [g.gather(flat, flat_idx)], hint="mask_probs")
