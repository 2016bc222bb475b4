"""``KRCNNConvDeconvUpsampleHead``: keypoint heatmap logits for the final detections.

The graph stops at the heatmaps ``(D, K, 4S, 4S)`` (56 x 56 for the usual 14 x 14 pooler); the
runtime turns them into ``(x, y, score)`` (``daemon.inference.keypoints``), because Detectron2
resizes each heatmap to its box's own size, which no fixed-shape graph operation expresses.
"""

from __future__ import annotations

from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone import Feature
from export_tools.modeling.layers import conv2d, upsample_bilinear
from export_tools.modeling.poolers import PoolerSpec, build_pooler
from export_tools.modeling.registry import ROI_KEYPOINT_HEADS
from export_tools.modeling.weights import WeightStore

PREFIX = "roi_heads.keypoint_head"
DECONV_KERNEL = 4
UP_SCALE = 2.0


@dataclass(frozen=True)
class KeypointHeadSpec:
    in_features: list[str]
    pooler: PoolerSpec
    conv_dims: list[int]
    num_keypoints: int

    @classmethod
    def from_config(cls, cfg: Config) -> KeypointHeadSpec:
        k = cfg.MODEL.ROI_KEYPOINT_HEAD
        return cls(list(cfg.MODEL.ROI_HEADS.IN_FEATURES),
                   PoolerSpec(int(k.POOLER_RESOLUTION), int(k.POOLER_SAMPLING_RATIO),
                              k.POOLER_TYPE),
                   [int(c) for c in k.CONV_DIMS], int(k.NUM_KEYPOINTS))


@ROI_KEYPOINT_HEADS.register("KRCNNConvDeconvUpsampleHead")
def build_keypoint_head(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                        boxes: Tensor, spec: KeypointHeadSpec) -> Tensor:
    """Heatmap logits ``(D, K, 4S, 4S)`` for ``boxes (D, 4)`` at network scale."""
    feats = [features[f] for f in spec.in_features]
    with g.scope("keypoint_head"):
        x = build_pooler(g, feats, boxes, spec.pooler)
        ch = feats[0].channels
        for k, dim in enumerate(spec.conv_dims):
            x = conv2d(g, w, x, f"{PREFIX}.conv_fcn{k + 1}", ch, dim, 3, padding=1, relu=True)
            ch = dim
        x = _score_lowres(g, w, x, ch, spec.num_keypoints)
        return upsample_bilinear(g, x, UP_SCALE, hint="heatmaps")


def _score_lowres(g: GraphBuilder, w: WeightStore, x: Tensor, in_ch: int, out_ch: int) -> Tensor:
    """``ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1)``: doubles the side."""
    prefix = f"{PREFIX}.score_lowres"
    k = DECONV_KERNEL
    weight = w.get(f"{prefix}.weight", (in_ch, out_ch, k, k))
    bias = w.get(f"{prefix}.bias", (out_ch,))
    pad = k // 2 - 1
    return g.op("ConvTranspose", [x, g.const(weight, f"{prefix}.weight"),
                                  g.const(bias, f"{prefix}.bias")],
                kernel_shape=[k, k], strides=[2, 2], pads=[pad] * 4, hint="score_lowres")

