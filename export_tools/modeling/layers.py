"""Convolution, normalisation and linear layers with Detectron2 checkpoint names.

Batch-norm variants (FrozenBN, BN, SyncBN) are inference-time affine maps and are folded into the
preceding convolution; GroupNorm stays a graph operation (InstanceNormalization over groups).
"""

from __future__ import annotations

import numpy as np

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.weights import WeightStore

BATCH_NORMS = ("FrozenBN", "BN", "SyncBN", "nnSyncBN", "naiveSyncBN")
SUPPORTED_NORMS = ("", *BATCH_NORMS, "GN", "LN")
BN_EPS = 1e-5
LN_EPS = 1e-6  # detectron2.layers.LayerNorm
GN_EPS = 1e-5
GN_GROUPS = 32


def conv2d(
    g: GraphBuilder,
    w: WeightStore,
    x: Tensor,
    prefix: str,
    in_ch: int,
    out_ch: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    norm: str = "",
    relu: bool = False,
    norm_prefix: str | None = None,
) -> Tensor:
    """Detectron2 ``Conv2d`` (+ optional ``norm``) (+ ReLU); ``prefix`` is its module path.

    ``norm_prefix`` is the norm's module path when it is not ``{prefix}.norm``.
    Input ``(N, in_ch, H, W)`` -> output ``(N, out_ch, H', W')``.
    """
    norm_prefix = norm_prefix or f"{prefix}.norm"
    weight, bias = _conv_params(g, w, prefix, in_ch, out_ch, kernel, groups, norm, norm_prefix)
    y = g.op(
        "Conv",
        [x, weight] if bias is None else [x, weight, bias],  # no empty optional input
        kernel_shape=[kernel, kernel],
        strides=[stride, stride],
        pads=[padding] * 4,
        dilations=[dilation, dilation],
        group=groups,
        hint=prefix.split(".")[-1],
    )
    if norm == "GN":
        y = group_norm(g, w, y, norm_prefix, out_ch)
    elif norm == "LN":
        y = channel_layer_norm(g, w, y, norm_prefix, out_ch)
    elif norm not in ("", *BATCH_NORMS):
        raise ValueError(f"unsupported norm {norm!r}")
    return g.op("Relu", [y], hint="relu") if relu else y


def _conv_params(
    g: GraphBuilder, w: WeightStore, prefix: str, in_ch: int, out_ch: int, kernel: int,
    groups: int, norm: str, norm_prefix: str,
) -> tuple[Tensor, Tensor | None]:
    """Weight and bias initializers (batch norm folded in), created once per module."""
    key = f"{prefix}|{norm_prefix if norm in BATCH_NORMS else ''}"

    def params() -> tuple[np.ndarray, np.ndarray | None]:
        weight = w.get(f"{prefix}.weight", (out_ch, in_ch // groups, kernel, kernel))
        bias = w.get_optional(f"{prefix}.bias", (out_ch,))
        if norm in BATCH_NORMS:
            weight, bias = _fold_batch_norm(w, norm_prefix, weight, bias, out_ch)
        return weight, bias

    cached: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}

    def get() -> tuple[np.ndarray, np.ndarray | None]:
        if "v" not in cached:
            cached["v"] = params()
        return cached["v"]

    weight = g.named_const(f"{key}.weight", lambda: get()[0], f"{prefix}.weight")
    has_bias = w.has(f"{prefix}.bias") or norm in BATCH_NORMS
    bias = g.named_const(f"{key}.bias", lambda: get()[1], f"{prefix}.bias") if has_bias else None
    return weight, bias


def _affine_prefix(w: WeightStore, prefix: str) -> str:
    """Where a batch norm's weight and bias live: itself, or its CycleBatchNormList parent."""
    parent, _, last = prefix.rpartition(".")
    if last.isdigit() and not w.has(f"{prefix}.weight") and w.has(f"{parent}.weight"):
        return parent
    return prefix


def _fold_batch_norm(
    w: WeightStore, prefix: str, weight: np.ndarray, bias: np.ndarray | None, ch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fold ``y = (conv(x) - mean) / sqrt(var + eps) * gamma + beta`` into the conv (in float64).

    A per-level BN of RetinaNet's ``CycleBatchNormList`` (``{list}.{level}``) holds only running
    statistics; its affine ``gamma``/``beta`` are shared, on the list module itself.
    """
    affine = _affine_prefix(w, prefix)
    gamma = w.get(f"{affine}.weight", (ch,)).astype(np.float64)
    beta = w.get(f"{affine}.bias", (ch,)).astype(np.float64)
    mean = w.get(f"{prefix}.running_mean", (ch,)).astype(np.float64)
    var = w.get(f"{prefix}.running_var", (ch,)).astype(np.float64)
    scale = gamma / np.sqrt(var + BN_EPS)
    folded_w = weight.astype(np.float64) * scale.reshape(-1, 1, 1, 1)
    conv_b = np.zeros(ch) if bias is None else bias.astype(np.float64)
    folded_b = (conv_b - mean) * scale + beta
    return folded_w.astype(np.float32), folded_b.astype(np.float32)


def group_norm(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, ch: int,
               groups: int = GN_GROUPS) -> Tensor:
    """``nn.GroupNorm(groups, ch)`` on ``(N, C, H, W)`` via InstanceNormalization over groups."""
    gamma = w.get(f"{prefix}.weight", (ch,))
    beta = w.get(f"{prefix}.bias", (ch,))
    # (N, groups, C / groups, H, W), every size explicit: with N == 0 (a box or mask head given
    # no RoIs) Reshape cannot infer a -1 from zero elements. InstanceNormalization normalises each
    # (n, group) over all the axes after the second.
    target = g.concat([g.dim(x, 0), g.i64([groups, ch // groups]), g.shape_of(x, 2)], 0)
    grouped = g.op("Reshape", [x, target], hint="gn_group")
    normed = g.op(
        "InstanceNormalization",
        [grouped, g.const(np.ones(groups, np.float32), "gn_one"),
         g.const(np.zeros(groups, np.float32), "gn_zero")],
        epsilon=GN_EPS,
        hint="gn",
    )
    y = g.op("Reshape", [normed, g.shape_of(x)], hint="gn_ungroup")
    y = g.op("Mul", [y, g.const(gamma.reshape(-1, 1, 1), f"{prefix}.weight")], hint="gn_scale")
    return g.op("Add", [y, g.const(beta.reshape(-1, 1, 1), f"{prefix}.bias")], hint="gn_shift")


def channel_layer_norm(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, ch: int,
                       eps: float = LN_EPS) -> Tensor:
    """Detectron2's channels-first ``LayerNorm`` on ``(N, C, H, W)``: normalise over C."""
    gamma = w.get(f"{prefix}.weight", (ch,))
    beta = w.get(f"{prefix}.bias", (ch,))
    mean = g.op("ReduceMean", [x], axes=[1], keepdims=1, hint="ln_mean")
    centered = g.op("Sub", [x, mean], hint="ln_centered")
    var = g.op("ReduceMean", [g.op("Mul", [centered, centered])], axes=[1], keepdims=1,
               hint="ln_var")
    std = g.op("Sqrt", [g.op("Add", [var, g.f32(eps)])], hint="ln_std")
    y = g.op("Div", [centered, std], hint="ln")
    y = g.op("Mul", [y, g.const(gamma.reshape(-1, 1, 1), f"{prefix}.weight")], hint="ln_scale")
    return g.op("Add", [y, g.const(beta.reshape(-1, 1, 1), f"{prefix}.bias")], hint="ln_shift")


def linear(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_dim: int, out_dim: int,
           relu: bool = False) -> Tensor:
    """``nn.Linear`` on ``(N, in_dim)`` -> ``(N, out_dim)``."""
    weight = w.get(f"{prefix}.weight", (out_dim, in_dim))
    bias = w.get(f"{prefix}.bias", (out_dim,))
    y = g.op("Gemm", [x, g.const(weight, f"{prefix}.weight"), g.const(bias, f"{prefix}.bias")],
             transB=1, hint=prefix.split(".")[-1])
    return g.op("Relu", [y], hint="relu") if relu else y


def max_pool(g: GraphBuilder, x: Tensor, kernel: int, stride: int, padding: int) -> Tensor:
    return g.op("MaxPool", [x], kernel_shape=[kernel, kernel], strides=[stride, stride],
                pads=[padding] * 4, hint="maxpool")


def upsample_bilinear(g: GraphBuilder, x: Tensor, scale: float, hint: str = "upsample") -> Tensor:
    """``F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)`` on NCHW."""
    scales = g.const(np.asarray([1.0, 1.0, scale, scale], np.float32), f"scale{scale:g}x")
    return g.op("Resize", [x, None, scales], mode="linear",
                coordinate_transformation_mode="pytorch_half_pixel", hint=hint)
