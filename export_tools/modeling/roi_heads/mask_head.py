"""``MaskRCNNConvUpsampleHead`` and ``mask_rcnn_inference`` (per-detection mask probabilities)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.checks import NORMS, Problem, one_of
from export_tools.modeling.layers import conv2d
from export_tools.modeling.registry import BACKBONES, ROI_MASK_HEADS
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
    # a backbone may allow more (LazyConfig ViTDet's "LN" heads, parity-tested on its fixture)
    extra = BACKBONES.attr(cfg, "head_norms", ())
    yield from one_of(cfg, "MODEL.ROI_MASK_HEAD.NORM", (*NORMS, *extra))


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
        if spec.agnostic:
            logits = conv2d(g, w, x, f"{prefix}.predictor", spec.conv_dim, 1, 1)
            return g.op("Sigmoid", [g.squeeze(logits, [1])], hint="mask_probs")
        return class_mask_probs(g, w, x, classes, f"{prefix}.predictor", spec.conv_dim,
                                spec.num_classes)


def class_mask_probs(g: GraphBuilder, w: WeightStore, x: Tensor, classes: Tensor, prefix: str,
                     in_ch: int, num_classes: int) -> Tensor:
    """The class-specific 1x1 predictor for each detection's own class only:
    ``sigmoid(W[c_i] . x_i + b[c_i])``, ``x (D, C, M, M)`` -> ``(D, M, M)``.

    The same as the ``(D, K, M, M)`` convolution followed by picking channel ``c_i``, without
    the ``K`` channels nobody reads (LVIS: 1203 classes, 1.1 GB per 300 detections).
    """
    weight = w.get(f"{prefix}.weight", (num_classes, in_ch, 1, 1)).reshape(num_classes, in_ch)
    bias = w.get(f"{prefix}.bias", (num_classes,))
    w_c = g.gather(g.const(weight, f"{prefix}.weight"), classes, hint="class_weight")  # (D, C)
    b_c = g.gather(g.const(bias, f"{prefix}.bias"), classes, hint="class_bias")  # (D,)
    m = g.shape_of(x, 2, 4)
    # (D, C, M*M); D may be 0, so the batch dim is the inferred one (M*M is never 0)
    area = g.op("ReduceProd", [m], keepdims=1, hint="mask_area")
    flat = g.op("Reshape", [x, g.concat([g.i64([-1, in_ch]), area], 0)], hint="mask_features")
    dot = g.op("MatMul", [g.unsqueeze(w_c, [1]), flat], hint="predictor")  # (D, 1, M*M)
    logits = g.op("Add", [g.squeeze(dot, [1]), g.unsqueeze(b_c, [1])])
    shape = g.concat([g.i64([-1]), m], 0)
    return g.op("Sigmoid", [g.op("Reshape", [logits, shape])], hint="mask_probs")


def _deconv2x(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_ch: int,
              out_ch: int) -> Tensor:
    """``ConvTranspose2d(in_ch, out_ch, 2, stride=2)`` + ReLU."""
    weight = w.get(f"{prefix}.weight", (in_ch, out_ch, 2, 2))
    bias = w.get(f"{prefix}.bias", (out_ch,))
    y = g.op("ConvTranspose", [x, g.const(weight, f"{prefix}.weight"),
                               g.const(bias, f"{prefix}.bias")],
             kernel_shape=[2, 2], strides=[2, 2], hint="deconv")
    return g.op("Relu", [y], hint="relu")
