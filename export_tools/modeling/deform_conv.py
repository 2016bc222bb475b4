"""Deformable 3x3 convolution (Detectron2 ``DeformConv`` / ``ModulatedDeformConv``) with standard
ONNX ops at opset 17: ``GridSample`` does the bilinear sampling, ``MatMul`` the convolution.

For output pixel ``(ho, wo)``, kernel tap ``k = 3 i + j`` and deformable group ``d``, Detectron2
samples the input at ``(ho * s - p + i * dil + dy, wo * s - p + j * dil + dx)`` bilinearly,
neighbours outside the image counting as 0, where ``dy`` and ``dx`` are offset channels
``d * 18 + 2 k`` and ``d * 18 + 2 k + 1``; the modulated variant multiplies each sample by the
mask channel ``d * 9 + k``. Each group's 9 taps are sampled by one ``GridSample`` (zero padding,
``align_corners=0``, pixel ``x`` at normalised ``(2 x + 1) / W - 1``) into columns
``(C * 9, Ho * Wo)``, multiplied by the weight ``(O, C / groups * 9)`` per convolution group.
ONNX's own ``DeformConv`` needs opset 19 and OpenVINO cannot read it; this form runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.layers import BATCH_NORMS, _fold_batch_norm, conv2d, group_norm
from export_tools.modeling.weights import WeightStore

TAPS = 9  # 3x3 kernels only, as Detectron2's ResNet uses


@dataclass(frozen=True)
class DeformSpec:
    """One deformable 3x3 conv: channels, stride, padding, dilation and the two group counts."""

    in_ch: int
    out_ch: int
    stride: int = 1
    padding: int = 1
    dilation: int = 1
    groups: int = 1
    deform_groups: int = 1
    modulated: bool = False


def _axis_positions(g: GraphBuilder, size: Tensor, spec: DeformSpec, hint: str) -> Tensor:
    """``o * stride - padding`` for ``o`` in ``range(size)``, float ``(size,)``."""
    count = g.reshape(size, [], hint=f"{hint}_count")
    idx = g.op("Range", [g.i64(0), count, g.i64(1)], hint=f"{hint}_range")
    pos = g.cast(idx, TensorProto.FLOAT, hint=f"{hint}_pos")
    return g.op("Sub", [g.op("Mul", [pos, g.f32(float(spec.stride))]),
                        g.f32(float(spec.padding))], hint=f"{hint}_base")


def sampling_grid(g: GraphBuilder, offset: Tensor, in_hw: Tensor, spec: DeformSpec) -> Tensor:
    """GridSample's grid ``(D, 9, Ho * Wo, 2)`` from the offsets ``(1, D * 18, Ho, Wo)``."""
    out_hw = g.shape_of(offset, 2, 4, hint="out_hw")
    off = g.op("Reshape", [offset, g.concat([g.i64([spec.deform_groups, TAPS, 2]), out_hw], 0)],
               hint="offsets")  # (D, 9, 2, Ho, Wo)
    dy = g.squeeze(g.slice(off, [0], [1], [2]), [2])
    dx = g.squeeze(g.slice(off, [1], [2], [2]), [2])
    taps_i = np.repeat(np.arange(3), 3).astype(np.float32) * spec.dilation
    taps_j = np.tile(np.arange(3), 3).astype(np.float32) * spec.dilation
    ys = _axis_positions(g, g.slice(out_hw, [0], [1], [0]), spec, "y")
    xs = _axis_positions(g, g.slice(out_hw, [1], [2], [0]), spec, "x")
    # absolute sampling positions, (D, 9, Ho, Wo)
    py = g.op("Add", [dy, g.op("Add", [g.reshape(ys, [1, 1, -1, 1]),
                                       g.const(taps_i.reshape(1, TAPS, 1, 1), "tap_i")])])
    px = g.op("Add", [dx, g.op("Add", [g.reshape(xs, [1, 1, 1, -1]),
                                       g.const(taps_j.reshape(1, TAPS, 1, 1), "tap_j")])])
    hw = g.cast(in_hw, TensorProto.FLOAT, hint="in_hw")

    def normalise(p: Tensor, axis: int, hint: str) -> Tensor:
        size = g.slice(hw, [axis], [axis + 1], [0])
        scaled = g.op("Div", [g.op("Add", [g.op("Mul", [p, g.f32(2.0)]), g.f32(1.0)]), size])
        return g.unsqueeze(g.op("Sub", [scaled, g.f32(1.0)], hint=hint), [4])

    grid = g.concat([normalise(px, 1, "gx"), normalise(py, 0, "gy")], axis=4)
    return g.reshape(grid, [spec.deform_groups, TAPS, -1, 2], hint="grid")


def deform_conv(g: GraphBuilder, x: Tensor, offset: Tensor, mask: Tensor | None,
                weight: np.ndarray, spec: DeformSpec) -> Tensor:
    """The deformable convolution of ``x (1, C, H, W)``, without bias: ``(1, O, Ho, Wo)``."""
    d, c, o = spec.deform_groups, spec.in_ch, spec.out_ch
    with g.scope("deform_conv"):
        in_hw = g.shape_of(x, 2, 4, hint="in_hw")
        grid = sampling_grid(g, offset, in_hw, spec)
        grouped = g.op("Reshape", [x, g.concat([g.i64([d, c // d]), in_hw], 0)], hint="dgroups")
        sampled = g.op("GridSample", [grouped, grid], mode="bilinear", padding_mode="zeros",
                       align_corners=0, hint="sample")  # (D, C/D, 9, Ho*Wo)
        cols = sampled
        if mask is not None:
            cols = g.op("Mul", [cols, g.reshape(mask, [d, 1, TAPS, -1], hint="mask")],
                        hint="modulated")
        # one convolution group: a plain 2-D MatMul
        lead = [spec.groups] if spec.groups > 1 else []
        cols = g.reshape(cols, [*lead, c // spec.groups * TAPS, -1], hint="columns")
        w = weight.reshape(*lead, o // spec.groups, c // spec.groups * TAPS)
        y = g.op("MatMul", [g.const(w, "deform_weight"), cols], hint="deform_mm")
        out_hw = g.shape_of(offset, 2, 4, hint="out_hw")
        return g.op("Reshape", [y, g.concat([g.i64([1, o]), out_hw], 0)], hint="deform_out")


def deform_conv_block(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, spec: DeformSpec,
                      norm: str) -> Tensor:
    """Detectron2's ``conv2_offset`` + deformable ``conv2`` (+ norm) + ReLU of a
    ``DeformBottleneckBlock``; ``prefix`` is the block's module path."""
    per_group = 27 if spec.modulated else 18
    with g.scope("conv2_offset"):
        raw = conv2d(g, w, x, f"{prefix}.conv2_offset", spec.in_ch, per_group * spec.deform_groups,
                     3, stride=spec.stride, padding=spec.padding, dilation=spec.dilation)
    offset, mask = raw, None
    if spec.modulated:  # chunk(3): offset_x, offset_y, mask; offsets are cat(offset_x, offset_y)
        n = 9 * spec.deform_groups
        offset = g.slice(raw, [0], [2 * n], [1], hint="offset")
        mask = g.op("Sigmoid", [g.slice(raw, [2 * n], [3 * n], [1])], hint="mask")
    name = f"{prefix}.conv2"
    weight = w.get(f"{name}.weight", (spec.out_ch, spec.in_ch // spec.groups, 3, 3))
    bias = None
    if norm in BATCH_NORMS:
        weight, bias = _fold_batch_norm(w, f"{name}.norm", weight, None, spec.out_ch)
    y = deform_conv(g, x, offset, mask, weight, spec)
    if bias is not None:
        y = g.op("Add", [y, g.const(bias.reshape(-1, 1, 1), f"{name}.bias")], hint="bn")
    elif norm == "GN":
        y = group_norm(g, w, y, f"{name}.norm", spec.out_ch)
    elif norm:
        raise ValueError(f"unsupported norm {norm!r} for a deformable conv")
    return g.op("Relu", [y], hint="relu")

