"""``Box2BoxTransform.apply_deltas`` and box clipping, in the same operation order as Detectron2."""

from __future__ import annotations

import math
from collections.abc import Sequence

from export_tools.graph import GraphBuilder, Tensor

DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


def apply_deltas(g: GraphBuilder, deltas: Tensor, boxes: Tensor, weights: Sequence[float],
                 scale_clamp: float = DEFAULT_SCALE_CLAMP) -> Tensor:
    """Decode ``deltas (R, K, 4)`` relative to ``boxes (R, 1, 4)`` -> ``(R, K, 4)`` xyxy boxes."""
    with g.scope("decode"):
        x0, y0, x1, y1 = _columns(g, boxes)
        widths = g.op("Sub", [x1, x0])
        heights = g.op("Sub", [y1, y0])
        half = g.f32(0.5)
        ctr_x = g.op("Add", [x0, g.op("Mul", [half, widths])])
        ctr_y = g.op("Add", [y0, g.op("Mul", [half, heights])])
        # dividing by a weight of 1 is exact, so it is left out rather than folded at load time
        dx, dy, dw, dh = (
            col if float(wt) == 1.0 else g.op("Div", [col, g.f32(float(wt))])
            for col, wt in zip(_columns(g, deltas), weights)
        )
        clamp = g.f32(float(scale_clamp))
        dw = g.op("Min", [dw, clamp])
        dh = g.op("Min", [dh, clamp])
        pred_ctr_x = g.op("Add", [g.op("Mul", [dx, widths]), ctr_x])
        pred_ctr_y = g.op("Add", [g.op("Mul", [dy, heights]), ctr_y])
        pred_w = g.op("Mul", [g.op("Exp", [dw]), widths])
        pred_h = g.op("Mul", [g.op("Exp", [dh]), heights])
        half_w = g.op("Mul", [half, pred_w])
        half_h = g.op("Mul", [half, pred_h])
        out = [
            g.op("Sub", [pred_ctr_x, half_w]),
            g.op("Sub", [pred_ctr_y, half_h]),
            g.op("Add", [pred_ctr_x, half_w]),
            g.op("Add", [pred_ctr_y, half_h]),
        ]
        return g.concat(out, axis=-1, hint="boxes")


def _columns(g: GraphBuilder, t: Tensor) -> list[Tensor]:
    """Split the last axis of size 4 into four tensors that keep the axis (size 1)."""
    return g.op("Split", [t, g.i64([1, 1, 1, 1])], n_out=4, axis=-1, hint="col")


def clip_boxes(g: GraphBuilder, boxes: Tensor, image_hw: Tensor) -> Tensor:
    """``Boxes.clip``: x into ``[0, W]``, y into ``[0, H]``; ``image_hw`` is float ``(2,)``."""
    with g.scope("clip"):
        upper = g.memo(("clip_upper", image_hw), lambda: _clip_upper(g, image_hw))
        return g.op("Max", [g.op("Min", [boxes, upper]), g.f32(0.0)], hint="clipped")


def _clip_upper(g: GraphBuilder, image_hw: Tensor) -> Tensor:
    """``(W, H, W, H)`` from ``(H, W)``: built once per graph and shared by every clip."""
    return g.op("Gather", [image_hw, g.i64([1, 0, 1, 0])], axis=0, hint="clip_upper")


def nonempty(g: GraphBuilder, boxes: Tensor, threshold: float = 0.0) -> Tensor:
    """``Boxes.nonempty``: width and height both greater than ``threshold``; boxes ``(N, 4)``."""
    x0, y0, x1, y1 = _columns(g, boxes)
    thr = g.f32(float(threshold))
    keep_w = g.op("Greater", [g.op("Sub", [x1, x0]), thr])
    keep_h = g.op("Greater", [g.op("Sub", [y1, y0]), thr])
    return g.reshape(g.op("And", [keep_w, keep_h]), [-1], hint="nonempty")
