"""``ROIPooler``: ROIAlign(V2) over one or several feature levels with Detectron2's level rule."""

from __future__ import annotations

import math
from dataclasses import dataclass

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone import Feature

# POOLER_TYPE -> ONNX RoiAlign coordinate_transformation_mode
POOLER_MODES = {"ROIAlignV2": "half_pixel", "ROIAlign": "output_half_pixel"}
CANONICAL_BOX_SIZE = 224
CANONICAL_LEVEL = 4


@dataclass(frozen=True)
class PoolerSpec:
    resolution: int
    sampling_ratio: int
    pooler_type: str


def roi_align(g: GraphBuilder, feature: Feature, boxes: Tensor, spec: PoolerSpec) -> Tensor:
    """Pool ``boxes (R, 4)`` (image coordinates) from one level -> ``(R, C, S, S)``."""
    if spec.pooler_type not in POOLER_MODES:
        raise ValueError(f"unsupported pooler type {spec.pooler_type!r}")
    batch_idx = g.op("Expand", [g.i64([0]), g.shape_of(boxes, 0, 1)], hint="batch_idx")
    return g.op(
        "RoiAlign",
        [feature.tensor, boxes, batch_idx],
        coordinate_transformation_mode=POOLER_MODES[spec.pooler_type],
        mode="avg",
        output_height=spec.resolution,
        output_width=spec.resolution,
        sampling_ratio=spec.sampling_ratio,
        spatial_scale=1.0 / feature.stride,
        hint="roi_align",
    )


def assign_levels(g: GraphBuilder, boxes: Tensor, min_level: int, max_level: int) -> Tensor:
    """Level index ``(R,)`` int64 relative to ``min_level`` (FPN paper, Eqn. 1)."""
    x0, y0, x1, y1 = g.op("Split", [boxes, g.i64([1, 1, 1, 1])], n_out=4, axis=1)
    area = g.op("Mul", [g.op("Sub", [x1, x0]), g.op("Sub", [y1, y0])])
    size = g.op("Sqrt", [area])
    ratio = g.op("Add", [g.op("Div", [size, g.f32(float(CANONICAL_BOX_SIZE))]), g.f32(1e-8)])
    log2 = g.op("Div", [g.op("Log", [ratio]), g.f32(math.log(2.0))])
    level = g.op("Floor", [g.op("Add", [log2, g.f32(float(CANONICAL_LEVEL))])])
    level = g.op("Clip", [level, g.f32(float(min_level)), g.f32(float(max_level))])
    level = g.op("Sub", [level, g.f32(float(min_level))])
    return g.reshape(g.cast(level, 7), [-1], hint="levels")


def build_pooler(g: GraphBuilder, features: list[Feature], boxes: Tensor,
                 spec: PoolerSpec) -> Tensor:
    """``(R, C, S, S)`` pooled features for ``boxes (R, 4)`` in their original order."""
    if len(features) == 1:
        return roi_align(g, features[0], boxes, spec)
    min_level = int(round(math.log2(features[0].stride)))
    max_level = int(round(math.log2(features[-1].stride)))
    with g.scope("pooler"):
        levels = assign_levels(g, boxes, min_level, max_level)
        pooled, indices = [], []
        for i, feat in enumerate(features):
            idx = g.nonzero_1d(g.op("Equal", [levels, g.i64(i)]), hint=f"level{i}")
            pooled.append(roi_align(g, feat, g.gather(boxes, idx), spec))
            indices.append(idx)
        # Back to the boxes' order: row j of the result is the pooled row whose original index is
        # j, i.e. a gather by the inverse permutation (the ascending sort order of the indices).
        # One gather moves the data once; scattering into zeros would write it twice.
        all_pooled, all_idx = g.concat(pooled, 0), g.concat(indices, 0)
        _, inverse = g.op("TopK", [all_idx, g.shape_of(all_idx)], n_out=2, axis=0, largest=0,
                          sorted=1, hint="inverse_order")
        return g.gather(all_pooled, inverse, hint="pooled")
