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
    """All anchors of one level, ``(Hi * Wi * A, 4)``, location-major like Detectron2."""
    with g.scope("anchors"):
        h = g.cast(g.dim(feature, 2), 1)  # float
        w = g.cast(g.dim(feature, 3), 1)
        s = g.f32([float(stride)])
        start = g.f32([offset * stride])
        shifts_x = g.op("Range", [g.squeeze(start, [0]), g.squeeze(g.op("Mul", [w, s]), [0]),
                                  g.squeeze(s, [0])], hint="shift_x")
        shifts_y = g.op("Range", [g.squeeze(start, [0]), g.squeeze(g.op("Mul", [h, s]), [0]),
                                  g.squeeze(s, [0])], hint="shift_y")
        # meshgrid (ij): rows follow y, columns follow x
        n_y, n_x = g.shape_of(shifts_y), g.shape_of(shifts_x)
        grid_shape = g.concat([n_y, n_x], axis=0)
        sx = g.reshape(g.op("Expand", [g.unsqueeze(shifts_x, [0]), grid_shape]), [-1, 1])
        sy = g.reshape(g.op("Expand", [g.unsqueeze(shifts_y, [1]), grid_shape]), [-1, 1])
        shifts = g.concat([sx, sy, sx, sy], axis=1)  # (Hi*Wi, 4)
        anchors = g.op("Add", [g.unsqueeze(shifts, [1]), g.const(base[None], "cell_anchors")])
        return g.reshape(anchors, [-1, 4], hint="anchors")
