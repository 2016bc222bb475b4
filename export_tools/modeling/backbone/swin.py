"""Swin Transformer (Detectron2 ``backbone.swin.SwinTransformer``): patch embedding, stages of
window attention with a relative position bias, shifted windows on every odd block, and patch
merging between stages; outputs ``p0..p3`` (strides 4..32) through their ``norm{i}`` LayerNorms.

The image size is dynamic: the padding of the image to the patch size, of each stage's token
grid to the window size (and its crop back), the cyclic shift and the shifted-window attention
mask of the padded grid are all computed in the graph. Tokens are ``(1, H, W, C)``; the batch is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

from export_tools.errors import WeightsError
from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.vit import dense, layer_norm, mlp_residual
from export_tools.modeling.weights import WeightStore

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64
END = np.iinfo(np.int64).max  # a Slice end meaning "to the end of the axis"
MASKED = -100.0  # what Detectron2 adds to attention between different shifted regions


@dataclass(frozen=True)
class _Grid:
    """One stage's token grid: ``hw`` (H, W), ``hwp`` (padded to the window), the Pad amounts
    and the shifted-window attention mask ``(nW, 1, N, N)`` (None without a shift)."""

    hw: Tensor
    hwp: Tensor
    pads: Tensor
    mask: Tensor | None


def relative_position_index(ws: int) -> np.ndarray:
    """``(N, N)`` with ``N = ws * ws``: the row of the bias table for each (query, key) pair of
    a window, as ``WindowAttention.relative_position_index``."""
    rows, cols = np.meshgrid(np.arange(ws), np.arange(ws), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()])  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # (2, N, N), from 0
    return rel[0] * (2 * ws - 1) + rel[1]


def relative_position_bias(w: WeightStore, prefix: str, ws: int, heads: int) -> np.ndarray:
    """``(heads, N, N)`` bias of one ``WindowAttention`` from its table; the index is the
    checkpoint's buffer when it holds one (as Detectron2 uses it), else recomputed."""
    n, rows = ws * ws, (2 * ws - 1) ** 2
    table = w.get(f"{prefix}.relative_position_bias_table", (rows, heads))
    name = f"{prefix}.relative_position_index"
    index = w.buffer(name)
    if index is None:
        index = relative_position_index(ws)
    elif index.shape != (n, n) or not np.all((index >= 0) & (index < rows) & (index % 1 == 0)):
        raise WeightsError(f"{name}: expected ({n}, {n}) integer rows of the {rows}-row bias "
                           f"table, got shape {index.shape} with values {index.min()}.."
                           f"{index.max()}")
    return np.ascontiguousarray(table[index.astype(np.int64)].transpose(2, 0, 1))


def _ceil_to(g: GraphBuilder, hw: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """(padding, padded size) of int64 sizes ``hw`` up to a multiple of ``size``."""
    s = g.i64([size])
    pad = g.op("Mod", [g.op("Sub", [s, g.op("Mod", [hw, s])]), s], hint="pad_amount")
    return pad, g.op("Add", [hw, pad], hint="padded_hw")


def _region_ids(g: GraphBuilder, n: Tensor, ws: int, shift: int) -> Tensor:
    """``(n,)`` int64: 0 before ``n - ws``, 1 before ``n - shift``, then 2 (the three slices
    ``BasicLayer.forward`` labels along one axis of the padded grid)."""
    r = g.op("Range", [g.const(0, dtype="int64"), g.squeeze(n, [0]), g.const(1, dtype="int64")])
    ids = [g.cast(g.op("GreaterOrEqual", [r, g.op("Sub", [n, g.i64([edge])])]), INT64)
           for edge in (ws, shift)]
    return g.op("Add", ids, hint="region")


def shift_mask(g: GraphBuilder, hwp: Tensor, ws: int, shift: int) -> Tensor:
    """``(nW, 1, N, N)`` float: 0 within one region of the shifted padded grid, -100 across."""
    hp, wp = g.slice(hwp, [0], [1], [0]), g.slice(hwp, [1], [2], [0])
    rows = g.unsqueeze(g.op("Mul", [_region_ids(g, hp, ws, shift), g.i64([3])]), [1])
    region = g.op("Add", [rows, g.unsqueeze(_region_ids(g, wp, ws, shift), [0])])  # (Hp, Wp)
    counts = g.op("Div", [hwp, g.i64([ws])])
    region = g.reshape(region, g.concat([g.slice(counts, [0], [1], [0]), g.i64([ws]),
                                         g.slice(counts, [1], [2], [0]), g.i64([ws])], 0))
    region = g.reshape(g.op("Transpose", [region], perm=[0, 2, 1, 3]), [-1, ws * ws])
    diff = g.op("Sub", [g.unsqueeze(region, [1]), g.unsqueeze(region, [2])])  # (nW, N, N)
    same = g.op("Equal", [diff, g.const(0, dtype="int64")])
    mask = g.op("Where", [same, g.f32(0.0), g.f32(MASKED)], hint="shift_mask")
    return g.unsqueeze(mask, [1])


def _grid(g: GraphBuilder, x: Tensor, ws: int, shifted: bool) -> _Grid:
    hw = g.shape_of(x, 1, 3)
    pad, hwp = _ceil_to(g, hw, ws)
    pads = g.concat([g.i64([0, 0, 0, 0, 0]), pad, g.i64([0])], 0)
    return _Grid(hw, hwp, pads, shift_mask(g, hwp, ws, ws // 2) if shifted else None)


def _roll(g: GraphBuilder, x: Tensor, start: int) -> Tensor:
    """``concat(x[start:], x[:start])`` on axes 1 and 2 of ``(1, H, W, C)``: ``torch.roll`` by
    ``-start`` on both."""
    for axis in (1, 2):
        x = g.concat([g.slice(x, [start], [END], [axis]), g.slice(x, [0], [start], [axis])],
                     axis, hint="roll")
    return x


def _windows(g: GraphBuilder, x: Tensor, hwp: Tensor, ws: int, ch: int) -> Tensor:
    """``window_partition``: ``(1, Hp, Wp, C)`` -> ``(nW, ws * ws, C)``."""
    counts = g.op("Div", [hwp, g.i64([ws])])
    x = g.reshape(x, g.concat([g.i64([-1]), g.slice(counts, [0], [1], [0]), g.i64([ws]),
                               g.slice(counts, [1], [2], [0]), g.i64([ws, ch])], 0))
    x = g.op("Transpose", [x], perm=[0, 1, 3, 2, 4, 5])
    return g.reshape(x, [-1, ws * ws, ch], hint="windows")


def _unwindow(g: GraphBuilder, x: Tensor, hwp: Tensor, ws: int, ch: int) -> Tensor:
    """``window_reverse``: ``(nW, ws * ws, C)`` -> ``(1, Hp, Wp, C)``."""
    counts = g.op("Div", [hwp, g.i64([ws])])
    x = g.reshape(x, g.concat([g.i64([-1]), counts, g.i64([ws, ws, ch])], 0))
    x = g.op("Transpose", [x], perm=[0, 1, 3, 2, 4, 5])
    return g.reshape(x, g.concat([g.i64([-1]), hwp, g.i64([ch])], 0), hint="unwindowed")


def window_attention(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, dim: int,
                     heads: int, spec: dict, mask: Tensor | None) -> Tensor:
    """``WindowAttention`` on ``(nW, N, dim)`` windows, with the shift ``mask`` when given."""
    ws, hd = spec["window_size"], dim // heads
    n = ws * ws
    qkv = dense(g, w, x, f"{prefix}.qkv", dim, 3 * dim, spec["qkv_bias"])
    qkv = g.op("Transpose", [g.reshape(qkv, [-1, n, 3, heads, hd])], perm=[2, 0, 3, 1, 4])
    q, k, v = (g.squeeze(t, [0]) for t in g.op("Split", [qkv], n_out=3, axis=0, hint="qkv"))
    q = g.op("Mul", [q, g.f32(spec["qk_scale"] or hd ** -0.5)], hint="q_scaled")
    attn = g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 1, 3, 2])], hint="attn")
    bias = relative_position_bias(w, prefix, ws, heads)
    attn = g.op("Add", [attn, g.const(bias, f"{prefix}.relative_position_bias")], hint="attn_rel")
    if mask is not None:
        attn = g.op("Add", [attn, mask], hint="attn_masked")
    out = g.op("MatMul", [g.op("Softmax", [attn], axis=-1, hint="attn_probs"), v])
    out = g.reshape(g.op("Transpose", [out], perm=[0, 2, 1, 3]), [-1, n, dim])
    return dense(g, w, out, f"{prefix}.proj", dim, dim)


def swin_block(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, dim: int, heads: int,
               spec: dict, grid: _Grid, shift: int) -> Tensor:
    """``SwinTransformerBlock`` on ``(1, H, W, dim)``; ``shift`` 0 or ``window_size // 2``."""
    ws, eps = spec["window_size"], spec["ln_eps"]
    y = layer_norm(g, w, x, f"{prefix}.norm1", dim, eps)
    y = g.op("Pad", [y, grid.pads], mode="constant", hint="win_pad")
    if shift:
        y = _roll(g, y, shift)
    y = _windows(g, y, grid.hwp, ws, dim)
    y = window_attention(g, w, y, f"{prefix}.attn", dim, heads, spec,
                         grid.mask if shift else None)
    y = _unwindow(g, y, grid.hwp, ws, dim)
    if shift:
        y = _roll(g, y, -shift)
    y = g.op("Slice", [y, g.i64([0, 0]), grid.hw, g.i64([1, 2])], hint="win_crop")
    x = g.op("Add", [x, y], hint="residual_attn")
    return mlp_residual(g, w, x, prefix, dim, spec["mlp_ratio"], eps)


def patch_merging(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, dim: int,
                  eps: float) -> Tensor:
    """``PatchMerging``: ``(1, H, W, C)`` -> ``(1, ceil(H/2), ceil(W/2), 2C)``; odd sizes are
    zero-padded, the 2x2 neighbours concatenated as (0,0), (1,0), (0,1), (1,1) (row, column)."""
    pad = g.op("Mod", [g.shape_of(x, 1, 3), g.i64([2])])
    x = g.op("Pad", [x, g.concat([g.i64([0, 0, 0, 0, 0]), pad, g.i64([0])], 0)],
             mode="constant", hint="merge_pad")
    parts = [g.slice(x, [r, c], [END, END], [1, 2], [2, 2], hint=f"x{i}")
             for i, (r, c) in enumerate(((0, 0), (1, 0), (0, 1), (1, 1)))]
    x = layer_norm(g, w, g.concat(parts, -1, hint="merged"), f"{prefix}.norm", 4 * dim, eps)
    return dense(g, w, x, f"{prefix}.reduction", 4 * dim, 2 * dim, bias=False)


def _patch_embed(g: GraphBuilder, w: WeightStore, image: Tensor, prefix: str,
                 spec: dict) -> Tensor:
    """``PatchEmbed``: zero-pad to the patch size, conv k = s = patch, LayerNorm: tokens."""
    p, dim = spec["patch_size"], spec["embed_dim"]
    pad, _ = _ceil_to(g, g.shape_of(image, 2, 4), p)
    x = g.op("Pad", [image, g.concat([g.i64([0, 0, 0, 0, 0, 0]), pad], 0)], mode="constant",
             hint="patch_pad")
    x = g.op("Conv", [x, g.const(w.get(f"{prefix}.proj.weight", (dim, 3, p, p)), "patch_w"),
                      g.const(w.get(f"{prefix}.proj.bias", (dim,)), "patch_b")],
             kernel_shape=[p, p], strides=[p, p], hint="patch_embed")
    x = g.op("Transpose", [x], perm=[0, 2, 3, 1], hint="tokens")
    if spec["patch_norm"]:
        x = layer_norm(g, w, x, f"{prefix}.norm", dim, spec["ln_eps"])
    return x


def build_swin(g: GraphBuilder, w: WeightStore, image: Tensor, prefix: str,
               spec: dict) -> dict[str, Feature]:
    """Padded image -> ``p{i}`` features (those in ``spec["out_features"]``), ``(1, C, H, W)``."""
    feats: dict[str, Feature] = {}
    depths, ws = spec["depths"], spec["window_size"]
    with g.scope("swin"):
        x = _patch_embed(g, w, image, f"{prefix}.patch_embed", spec)
        for i, depth in enumerate(depths):
            dim, heads = spec["embed_dim"] * 2**i, spec["num_heads"][i]
            with g.scope(f"stage{i}"):
                grid = _grid(g, x, ws, shifted=depth > 1 and ws // 2 > 0)
                for j in range(depth):
                    x = swin_block(g, w, x, f"{prefix}.layers.{i}.blocks.{j}", dim, heads, spec,
                                   grid, ws // 2 if j % 2 else 0)
                if f"p{i}" in spec["out_features"]:
                    y = layer_norm(g, w, x, f"{prefix}.norm{i}", dim, spec["ln_eps"])
                    feats[f"p{i}"] = Feature(g.op("Transpose", [y], perm=[0, 3, 1, 2]), dim,
                                             2 ** (i + 2))
                if i < len(depths) - 1:
                    x = patch_merging(g, w, x, f"{prefix}.layers.{i}.downsample", dim,
                                      spec["ln_eps"])
    return feats
