"""Detectron2's ``DefaultAnchorGenerator``, computed in the graph from each feature map's size."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from export_tools.graph import GraphBuilder, Tensor


def broadcast_params(params: Sequence, num_levels: int, name: str) -> list[list[float]]:
    """One list per level: a single list applies to all levels (Detectron2 semantics)."""
    params = [list(p) if isinstance(p, (list, tuple)) else [p] for p in params]
    if not params or not isinstance(params[0], list):
        raise ValueError(f"{name} must be a list of lists")
    if len(params) == 1:
        return params * num_levels
    if len(params) != num_levels:
        raise ValueError(f"{name} has {len(params)} entries for {num_levels} feature levels")
    return params


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float]) -> np.ndarray:
    """``(A, 4)`` anchors centred at 0: for each size, for each aspect ratio (h / w)."""
    anchors = []
    for size in sizes:
        area = float(size) ** 2.0
        for ratio in aspect_ratios:
            w = math.sqrt(area / ratio)
            h = ratio * w
            anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
    return np.asarray(anchors, dtype=np.float32)


def grid_anchors(g: GraphBuilder, feature: Tensor, stride: int, offset: float,
                 base: np.ndarray) -> Tensor:
    """All anchors of one level, ``(Hi * Wi * A, 4)``, for a feature map ``(1, C, Hi, Wi)``."""
    return grid_anchors_hw(g, g.shape_of(feature, 2, 4), stride, offset, base)


def grid_anchors_hw(g: GraphBuilder, feature_hw: Tensor, stride: int, offset: float,
                    base: np.ndarray) -> Tensor:
    """All anchors of one level, ``(Hi * Wi * A, 4)``, location-major like Detectron2.

    ``feature_hw`` is the level's ``(2,)`` int64 size, computed once by the caller and shared
    with the rest of the level's graph. Constants are emitted already folded (scalars).
    """
    with g.scope("anchors"):
        limits = g.op("Mul", [g.cast(feature_hw, 1), g.f32(float(stride))], hint="limits")
        start = g.const(np.float32(offset * stride), "start")
        step = g.const(np.float32(stride), "step")
        limit_y = g.gather(limits, g.const(np.int64(0), "i0"), hint="limit_y")  # scalar
        limit_x = g.gather(limits, g.const(np.int64(1), "i1"), hint="limit_x")
        shifts_y = g.op("Range", [start, limit_y, step], hint="shift_y")
        shifts_x = g.op("Range", [start, limit_x, step], hint="shift_x")
        # meshgrid (ij): rows follow y, columns follow x; Range yields exactly Hi / Wi values
        sx = g.reshape(g.op("Expand", [g.unsqueeze(shifts_x, [0]), feature_hw]), [-1, 1])
        sy = g.reshape(g.op("Expand", [g.unsqueeze(shifts_y, [1]), feature_hw]), [-1, 1])
        shifts = g.concat([sx, sy, sx, sy], axis=1)  # (Hi*Wi, 4)
        anchors = g.op("Add", [g.unsqueeze(shifts, [1]), g.const(base[None], "cell_anchors")])
        return g.reshape(anchors, [-1, 4], hint="anchors")
