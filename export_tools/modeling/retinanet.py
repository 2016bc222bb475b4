"""RetinaNet: head (class and box subnets) and its dense-detector inference."""

from __future__ import annotations

from dataclasses import dataclass

from export_tools.config import Config
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.anchors import broadcast_params, cell_anchors, grid_anchors_hw
from export_tools.modeling.backbone import Feature
from export_tools.modeling.box_regression import apply_deltas
from export_tools.modeling.layers import BATCH_NORMS, conv2d, group_norm
from export_tools.modeling.roi_heads.fast_rcnn import Detections, select_ranked
from export_tools.modeling.weights import WeightStore


@dataclass(frozen=True)
class RetinaNetSpec:
    in_features: list[str]
    num_classes: int
    num_convs: int
    norm: str
    sizes: list[list[float]]
    aspect_ratios: list[list[float]]
    offset: float
    weights: tuple[float, ...]
    score_thresh: float
    topk_candidates: int
    nms_thresh: float
    max_detections: int

    @classmethod
    def from_config(cls, cfg: Config) -> RetinaNetSpec:
        r, ag = cfg.MODEL.RETINANET, cfg.MODEL.ANCHOR_GENERATOR
        n = len(r.IN_FEATURES)
        return cls(list(r.IN_FEATURES), int(r.NUM_CLASSES), int(r.NUM_CONVS), r.NORM,
                   broadcast_params(ag.SIZES, n, "MODEL.ANCHOR_GENERATOR.SIZES"),
                   broadcast_params(ag.ASPECT_RATIOS, n, "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"),
                   float(ag.OFFSET), tuple(r.BBOX_REG_WEIGHTS), float(r.SCORE_THRESH_TEST),
                   int(r.TOPK_CANDIDATES_TEST), float(r.NMS_THRESH_TEST),
                   int(cfg.TEST.DETECTIONS_PER_IMAGE))


def _subnet(g: GraphBuilder, w: WeightStore, x: Tensor, name: str, ch: int, level: int,
            spec: RetinaNetSpec) -> Tensor:
    """``head.{name}``: NUM_CONVS x (conv3x3 [+ norm] + ReLU), Sequential indices as saved."""
    step = 3 if spec.norm else 2
    for i in range(spec.num_convs):
        prefix = f"head.{name}.{i * step}"
        norm_prefix = f"head.{name}.{i * step + 1}"
        if spec.norm in ("BN", "SyncBN"):  # one BatchNorm per level (CycleBatchNormList)
            norm_prefix = f"{norm_prefix}.{level}"
        norm = spec.norm if spec.norm in BATCH_NORMS else ""
        x = conv2d(g, w, x, prefix, ch, ch, 3, padding=1, norm=norm, norm_prefix=norm_prefix)
        if spec.norm == "GN":
            x = group_norm(g, w, x, norm_prefix, ch)
        x = g.op("Relu", [x], hint="relu")
    return x


def _level_candidates(g: GraphBuilder, w: WeightStore, feat: Feature, level: int,
                      spec: RetinaNetSpec) -> tuple[Tensor, Tensor, Tensor]:
    """Top candidates of one level: boxes ``(k, 4)``, scores ``(k,)``, classes ``(k,)``."""
    k = spec.num_classes
    a = len(spec.sizes[level]) * len(spec.aspect_ratios[level])
    cls_t = _subnet(g, w, feat.tensor, "cls_subnet", feat.channels, level, spec)
    box_t = _subnet(g, w, feat.tensor, "bbox_subnet", feat.channels, level, spec)
    logits = conv2d(g, w, cls_t, "head.cls_score", feat.channels, a * k, 3, padding=1)
    deltas = conv2d(g, w, box_t, "head.bbox_pred", feat.channels, a * 4, 3, padding=1)
    # (1, A*K, H, W) -> (1, A, K, H, W) -> (H, W, A, K) -> (H*W*A*K,)
    hw = g.shape_of(logits, 2, 4)
    logits = g.op("Reshape", [logits, g.concat([g.i64([1, a, k]), hw], 0)])
    scores = g.op("Sigmoid", [g.reshape(g.op("Transpose", [logits], perm=[0, 3, 4, 1, 2]), [-1])])
    deltas = g.op("Reshape", [deltas, g.concat([g.i64([1, a, 4]), hw], 0)])
    deltas = g.reshape(g.op("Transpose", [deltas], perm=[0, 3, 4, 1, 2]), [-1, 4])
    # 1. keep scores above the threshold, 2. then the top-k of those
    keep = g.nonzero_1d(g.op("Greater", [scores, g.f32(spec.score_thresh)]), hint="above")
    kept_scores = g.gather(scores, keep)
    top_scores, order = g.topk(kept_scores, g.min_k(g.shape_of(keep), spec.topk_candidates), 0)
    flat = g.gather(keep, order)
    anchor_idx = g.op("Div", [flat, g.i64(k)], hint="anchor_idx")
    classes = g.op("Mod", [flat, g.i64(k)], hint="class_idx")
    base = cell_anchors(spec.sizes[level], spec.aspect_ratios[level])
    anchors = grid_anchors_hw(g, hw, feat.stride, spec.offset, base)
    boxes = apply_deltas(g, g.unsqueeze(g.gather(deltas, anchor_idx), [1]),
                         g.unsqueeze(g.gather(anchors, anchor_idx), [1]), spec.weights)
    return g.reshape(boxes, [-1, 4]), top_scores, classes


def build_retinanet(g: GraphBuilder, w: WeightStore, features: dict[str, Feature],
                    cfg: Config) -> Detections:
    """Dense detection over all levels, then per-class NMS and the detection cap."""
    spec = RetinaNetSpec.from_config(cfg)
    boxes, scores, classes = [], [], []
    with g.scope("retinanet"):
        for level, name in enumerate(spec.in_features):
            b, s, c = _level_candidates(g, w, features[name], level, spec)
            boxes.append(b)
            scores.append(s)
            classes.append(c)
        b, s, c = g.concat(boxes, 0), g.concat(scores, 0), g.concat(classes, 0)
        cap = spec.max_detections if spec.max_detections >= 0 else None
        return select_ranked(g, b, s, c, spec.num_classes, spec.nms_thresh, cap)
