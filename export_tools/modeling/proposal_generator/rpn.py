"""RPN: ``StandardRPNHead`` + anchors + ``find_top_rpn_proposals`` (inference path)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.anchors import broadcast_params, cell_anchors, grid_anchors_hw
from export_tools.modeling.backbone import Feature
from export_tools.modeling.box_regression import apply_deltas, clip_boxes, nonempty
from export_tools.modeling.checks import Problem
from export_tools.modeling.layers import conv2d
from export_tools.modeling.nms import batched_nms
from export_tools.modeling.registry import PROPOSAL_GENERATORS, RPN_HEADS
from export_tools.modeling.weights import WeightStore

PREFIX = "proposal_generator.rpn_head"


@dataclass(frozen=True)
class RPNConfig:
    in_features: list[str]
    conv_dims: list[int]
    sizes: list[list[float]]
    aspect_ratios: list[list[float]]
    offset: float
    weights: tuple[float, ...]
    pre_nms_topk: int
    post_nms_topk: int
    nms_thresh: float
    min_size: float
    head: str

    @classmethod
    def from_config(cls, cfg: Config) -> RPNConfig:
        rpn, ag = cfg.MODEL.RPN, cfg.MODEL.ANCHOR_GENERATOR
        n = len(rpn.IN_FEATURES)
        return cls(list(rpn.IN_FEATURES), list(rpn.CONV_DIMS),
                   broadcast_params(ag.SIZES, n, "MODEL.ANCHOR_GENERATOR.SIZES"),
                   broadcast_params(ag.ASPECT_RATIOS, n, "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"),
                   float(ag.OFFSET), tuple(rpn.BBOX_REG_WEIGHTS), int(rpn.PRE_NMS_TOPK_TEST),
                   int(rpn.POST_NMS_TOPK_TEST), float(rpn.NMS_THRESH),
                   float(cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE), str(rpn.HEAD_NAME))


@RPN_HEADS.register("StandardRPNHead")
def standard_rpn_head(g: GraphBuilder, w: WeightStore, x: Feature, num_anchors: int,
              conv_dims: list[int]) -> tuple[Tensor, Tensor]:
    """Shared 3x3 conv(s) + ReLU, then objectness ``(1, A, H, W)`` and deltas ``(1, 4A, H, W)``."""
    ch, y = x.channels, x.tensor
    for k, dim in enumerate(conv_dims):
        out = ch if dim == -1 else dim
        name = f"{PREFIX}.conv" if len(conv_dims) == 1 else f"{PREFIX}.conv.conv{k}"
        y = conv2d(g, w, y, name, ch, out, 3, padding=1, relu=True)
        ch = out
    logits = conv2d(g, w, y, f"{PREFIX}.objectness_logits", ch, num_anchors, 1)
    deltas = conv2d(g, w, y, f"{PREFIX}.anchor_deltas", ch, num_anchors * 4, 1)
    return logits, deltas


def _level_top_proposals(g: GraphBuilder, cfg: RPNConfig, logits: Tensor, deltas: Tensor,
                         anchors: Tensor, num_anchors: int,
                         hw: Tensor) -> tuple[Tensor, Tensor]:
    """Flatten one level to ``(Hi*Wi*A,)``, keep its ``pre_nms_topk`` best and decode them;
    ``hw`` is the level's ``(2,)`` int64 size."""
    # (1, A, H, W) -> (H*W*A,)
    flat_logits = g.reshape(g.op("Transpose", [logits], perm=[0, 2, 3, 1]), [-1])
    # (1, 4A, H, W) -> (1, A, 4, H, W) -> (H, W, A, 4) -> (H*W*A, 4)
    d = g.op("Reshape", [deltas, g.concat([g.i64([1, num_anchors, 4]), hw], axis=0)])
    flat_deltas = g.reshape(g.op("Transpose", [d], perm=[0, 3, 4, 1, 2]), [-1, 4])
    k = g.min_k(g.shape_of(flat_logits), cfg.pre_nms_topk)
    scores, idx = g.topk(flat_logits, k, axis=0)
    sel_deltas = g.unsqueeze(g.gather(flat_deltas, idx), [1])  # (k, 1, 4)
    sel_anchors = g.unsqueeze(g.gather(anchors, idx), [1])
    boxes = apply_deltas(g, sel_deltas, sel_anchors, cfg.weights)
    return g.reshape(boxes, [-1, 4]), scores


def build_rpn(g: GraphBuilder, w: WeightStore, features: dict[str, Feature], image_hw: Tensor,
              cfg: RPNConfig) -> Tensor:
    """Proposals ``(P, 4)`` at network scale, sorted by objectness (P <= post_nms_topk)."""
    return build_rpn_scored(g, w, features, image_hw, cfg)[0]


def build_rpn_scored(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                     image_hw: Tensor, cfg: RPNConfig) -> tuple[Tensor, Tensor]:
    """Proposals ``(P, 4)`` and their objectness logits ``(P,)``, as ``find_top_rpn_proposals``
    returns them (sorted by decreasing objectness, P <= post_nms_topk)."""
    num_anchors = {len(s) * len(r) for s, r in zip(cfg.sizes, cfg.aspect_ratios)}
    if len(num_anchors) != 1:
        raise ValueError("MODEL.ANCHOR_GENERATOR: every level needs the same number of anchors")
    a = num_anchors.pop()
    head = RPN_HEADS.entry(cfg.head).build
    boxes, scores, levels = [], [], []
    with g.scope("rpn"):
        for lvl, name in enumerate(cfg.in_features):
            feat = features[name]
            logits, deltas = head(g, w, feat, a, cfg.conv_dims)
            base = cell_anchors(cfg.sizes[lvl], cfg.aspect_ratios[lvl])
            hw = g.shape_of(feat.tensor, 2, 4, hint=f"p{lvl}_hw")  # the level's one shape op
            anchors = grid_anchors_hw(g, hw, feat.stride, cfg.offset, base)
            b, s = _level_top_proposals(g, cfg, logits, deltas, anchors, a, hw)
            boxes.append(b)
            scores.append(s)
            levels.append(g.op("Expand", [g.i64([lvl]), g.shape_of(s)], hint="level"))
        all_boxes = clip_boxes(g, g.concat(boxes, 0), image_hw)
        all_scores, all_levels = g.concat(scores, 0), g.concat(levels, 0)
        keep = g.nonzero_1d(nonempty(g, all_boxes, cfg.min_size), hint="keep_nonempty")
        all_boxes, all_scores = g.gather(all_boxes, keep), g.gather(all_scores, keep)
        all_levels = g.gather(all_levels, keep)
        kept = batched_nms(g, all_boxes, all_scores, all_levels, len(cfg.in_features),
                           cfg.nms_thresh, max_keep=cfg.post_nms_topk)
        return (g.gather(all_boxes, kept, hint="proposals"),
                g.gather(all_scores, kept, hint="proposal_logits"))


def _rpn_problems(cfg: Config) -> Iterator[Problem]:
    yield from RPN_HEADS.problems(cfg)


def build_scored_rpn_proposals(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                               image_hw: Tensor, cfg: Config) -> tuple[Tensor, Tensor]:
    """:func:`build_rpn_scored` with the settings of ``cfg`` (ProposalNetwork's outputs)."""
    return build_rpn_scored(g, w, features, image_hw, RPNConfig.from_config(cfg))


@PROPOSAL_GENERATORS.register("RPN", check=_rpn_problems, scored=build_scored_rpn_proposals)
def build_rpn_proposals(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                        image_hw: Tensor, cfg: Config) -> Tensor:
    """:func:`build_rpn` with the settings of ``cfg``."""
    return build_rpn(g, w, features, image_hw, RPNConfig.from_config(cfg))
