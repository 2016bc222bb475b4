"""ViTDet's plain ViT (Detectron2 ``backbone.vit.ViT``) on a square-padded image.

Patch embedding, absolute position embedding (bicubic-interpolated once, at export, to the token
grid of the padded square), blocks of window or global multi-head attention with decomposed
relative position bias, LayerNorm and a GELU MLP. Every shape is static: the image is padded to
``square_pad`` first, as Detectron2 does for these models. Tokens are ``(B, H, W, C)``.
"""

from __future__ import annotations

import math

import numpy as np

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.weights import WeightStore

CUBIC_A = -0.75  # PyTorch's bicubic kernel


def _cubic_weights(t: float) -> list[float]:
    def near(x: float) -> float:
        return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1

    def far(x: float) -> float:
        return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)``: 1-D ``F.interpolate(mode="bicubic", align_corners=False)`` to a size."""
    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        src = scale * (i + 0.5) - 0.5
        base = math.floor(src)
        for k, wt in enumerate(_cubic_weights(src - base)):
            m[i, min(max(base - 1 + k, 0), n_in - 1)] += wt
    return m


def abs_pos_embed(pos: np.ndarray, has_cls: bool, hw: tuple[int, int]) -> np.ndarray:
    """Detectron2's ``get_abs_pos``: ``(1, N(+1), C)`` -> ``(1, H, W, C)``."""
    grid = pos[0, 1:] if has_cls else pos[0]
    size = int(math.sqrt(grid.shape[0]))
    grid = grid.reshape(size, size, -1).astype(np.float64)
    if (size, size) != hw:
        grid = np.einsum("hi,ijc,wj->hwc", bicubic_matrix(size, hw[0]), grid,
                         bicubic_matrix(size, hw[1]))
    return grid[None].astype(np.float32)


def rel_pos_table(rel_pos: np.ndarray, q_size: int, k_size: int) -> np.ndarray:
    """Detectron2's ``get_rel_pos`` for equal sizes: ``(q, k, C)``."""
    if rel_pos.shape[0] != 2 * max(q_size, k_size) - 1:
        raise NotImplementedError("relative position tables that need resizing")
    coords = np.arange(q_size)[:, None] - np.arange(k_size)[None, :] + (k_size - 1)
    return rel_pos[coords]


def layer_norm(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, dim: int,
               eps: float) -> Tensor:
    """``nn.LayerNorm(dim)`` over the last axis."""
    return g.op("LayerNormalization", [x, g.const(w.get(f"{prefix}.weight", (dim,)),
                                                  f"{prefix}.weight"),
                                       g.const(w.get(f"{prefix}.bias", (dim,)),
                                               f"{prefix}.bias")],
                axis=-1, epsilon=eps, hint=prefix.split(".")[-1])


def dense(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, in_dim: int, out_dim: int,
          bias: bool = True) -> Tensor:
    """``nn.Linear`` on the last axis of a tensor of any rank."""
    weight = w.get(f"{prefix}.weight", (out_dim, in_dim)).T.copy()
    y = g.op("MatMul", [x, g.const(weight, f"{prefix}.weight_t")], hint=prefix.split(".")[-1])
    if bias:
        y = g.op("Add", [y, g.const(w.get(f"{prefix}.bias", (out_dim,)), f"{prefix}.bias")])
    return y


def gelu(g: GraphBuilder, x: Tensor) -> Tensor:
    """Exact GELU ``0.5 x (1 + erf(x / sqrt 2))`` (opset 17 has no Gelu)."""
    erf = g.op("Erf", [g.op("Div", [x, g.f32(math.sqrt(2.0))])])
    return g.op("Mul", [g.op("Mul", [x, g.f32(0.5)]), g.op("Add", [erf, g.f32(1.0)])],
                hint="gelu")


def _rel_bias(g: GraphBuilder, q: Tensor, table_h: np.ndarray, table_w: np.ndarray,
              b: int, h: int, wd: int, c: int) -> tuple[Tensor, Tensor]:
    """``einsum("bhwc,hkc->bhwk")`` and ``einsum("bhwc,wkc->bhwk")`` as batched MatMuls."""
    r_q = g.reshape(q, [b, h, wd, c])
    qh = g.reshape(g.op("Transpose", [r_q], perm=[1, 0, 2, 3]), [h, b * wd, c])
    rel_h = g.op("MatMul", [qh, g.const(table_h.transpose(0, 2, 1).copy(), "rel_pos_h_t")])
    rel_h = g.op("Transpose", [g.reshape(rel_h, [h, b, wd, h])], perm=[1, 0, 2, 3])
    qw = g.reshape(g.op("Transpose", [r_q], perm=[2, 0, 1, 3]), [wd, b * h, c])
    rel_w = g.op("MatMul", [qw, g.const(table_w.transpose(0, 2, 1).copy(), "rel_pos_w_t")])
    rel_w = g.op("Transpose", [g.reshape(rel_w, [wd, b, h, wd])], perm=[1, 2, 0, 3])
    return (g.reshape(rel_h, [b, h, wd, h, 1], hint="rel_h"),
            g.reshape(rel_w, [b, h, wd, 1, wd], hint="rel_w"))


def attention(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, spec: dict,
              shape: tuple[int, int, int]) -> Tensor:
    """Multi-head self-attention on ``(B, H, W, C)`` with optional decomposed rel-pos bias."""
    b, h, wd = shape
    dim, heads = spec["embed_dim"], spec["num_heads"]
    hd, n = dim // heads, h * wd
    qkv = dense(g, w, x, f"{prefix}.qkv", dim, 3 * dim, spec["qkv_bias"])
    qkv = g.op("Transpose", [g.reshape(qkv, [b, n, 3, heads, hd])], perm=[2, 0, 3, 1, 4])
    qkv = g.reshape(qkv, [3, b * heads, n, hd])
    q, k, v = (g.squeeze(t, [0]) for t in g.op("Split", [qkv], n_out=3, axis=0, hint="qkv"))
    scaled = g.op("Mul", [q, g.f32(hd ** -0.5)], hint="q_scaled")
    attn = g.op("MatMul", [scaled, g.op("Transpose", [k], perm=[0, 2, 1])], hint="attn")
    if spec["use_rel_pos"]:
        th = rel_pos_table(w.get(f"{prefix}.rel_pos_h", (2 * h - 1, hd)), h, h)
        tw = rel_pos_table(w.get(f"{prefix}.rel_pos_w", (2 * wd - 1, hd)), wd, wd)
        rel_h, rel_w = _rel_bias(g, q, th, tw, b * heads, h, wd, hd)
        attn5 = g.reshape(attn, [b * heads, h, wd, h, wd])
        attn5 = g.op("Add", [g.op("Add", [attn5, rel_h]), rel_w], hint="attn_rel")
        attn = g.reshape(attn5, [b * heads, n, n])
    probs = g.op("Softmax", [attn], axis=-1, hint="attn_probs")
    out = g.reshape(g.op("MatMul", [probs, v]), [b, heads, h, wd, hd])
    out = g.reshape(g.op("Transpose", [out], perm=[0, 2, 3, 1, 4]), [b, h, wd, dim])
    return dense(g, w, out, f"{prefix}.proj", dim, dim)


def _windows(g: GraphBuilder, x: Tensor, grid: tuple[int, int], size: int,
             dim: int) -> tuple[Tensor, tuple[int, int]]:
    """``window_partition``: zero-pad to multiples of ``size``; ``(nW, size, size, C)``."""
    h, wd = grid
    ph, pw = -h % size, -wd % size
    if ph or pw:
        x = g.op("Pad", [x, g.i64([0, 0, 0, 0, 0, ph, pw, 0])], mode="constant", hint="win_pad")
    nh, nw = (h + ph) // size, (wd + pw) // size
    x = g.reshape(x, [1, nh, size, nw, size, dim])
    x = g.op("Transpose", [x], perm=[0, 1, 3, 2, 4, 5])
    return g.reshape(x, [nh * nw, size, size, dim], hint="windows"), (nh, nw)


def _unwindow(g: GraphBuilder, x: Tensor, counts: tuple[int, int], grid: tuple[int, int],
              size: int, dim: int) -> Tensor:
    nh, nw = counts
    x = g.reshape(x, [1, nh, nw, size, size, dim])
    x = g.reshape(g.op("Transpose", [x], perm=[0, 1, 3, 2, 4, 5]), [1, nh * size, nw * size, dim])
    if (nh * size, nw * size) != grid:
        x = g.slice(x, [0, 0], list(grid), [1, 2], hint="win_crop")
    return x


def vit_block(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, spec: dict, index: int,
              grid: tuple[int, int]) -> Tensor:
    dim, eps = spec["embed_dim"], spec["ln_eps"]
    size = spec["window_size"] if index in spec["window_block_indexes"] else 0
    y = layer_norm(g, w, x, f"{prefix}.norm1", dim, eps)
    if size:
        y, counts = _windows(g, y, grid, size, dim)
        y = attention(g, w, y, f"{prefix}.attn", spec, (counts[0] * counts[1], size, size))
        y = _unwindow(g, y, counts, grid, size, dim)
    else:
        y = attention(g, w, y, f"{prefix}.attn", spec, (1, *grid))
    x = g.op("Add", [x, y], hint="residual_attn")
    return mlp_residual(g, w, x, prefix, dim, spec["mlp_ratio"], eps)


def mlp_residual(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, dim: int,
                 mlp_ratio: float, eps: float) -> Tensor:
    """A transformer block's second half: ``x + mlp.fc2(gelu(mlp.fc1(norm2(x))))``, the hidden
    width ``int(dim * mlp_ratio)``; ``x`` is ``(..., dim)``."""
    hidden = int(dim * mlp_ratio)
    y = layer_norm(g, w, x, f"{prefix}.norm2", dim, eps)
    y = dense(g, w, gelu(g, dense(g, w, y, f"{prefix}.mlp.fc1", dim, hidden)),
              f"{prefix}.mlp.fc2", hidden, dim)
    return g.op("Add", [x, y], hint="residual_mlp")


def build_vit(g: GraphBuilder, w: WeightStore, image: Tensor, prefix: str, spec: dict,
              side: int) -> Tensor:
    """Padded ``(1, 3, side, side)`` image -> ``(1, C, side/patch, side/patch)`` features."""
    p, dim = spec["patch_size"], spec["embed_dim"]
    grid = (side // p, side // p)
    with g.scope("vit"):
        x = g.op("Conv", [image, g.const(w.get(f"{prefix}.patch_embed.proj.weight",
                                               (dim, 3, p, p)), "patch_w"),
                          g.const(w.get(f"{prefix}.patch_embed.proj.bias", (dim,)), "patch_b")],
                 kernel_shape=[p, p], strides=[p, p], hint="patch_embed")
        x = g.op("Transpose", [x], perm=[0, 2, 3, 1], hint="tokens")
        if spec["use_abs_pos"]:
            n = (spec["pretrain_img_size"] // p) ** 2 + int(spec["pretrain_use_cls_token"])
            pos = abs_pos_embed(w.get(f"{prefix}.pos_embed", (1, n, dim)),
                                spec["pretrain_use_cls_token"], grid)
            x = g.op("Add", [x, g.const(pos, "pos_embed")], hint="pos")
        for i in range(spec["depth"]):
            with g.scope(f"block{i}"):
                x = vit_block(g, w, x, f"{prefix}.blocks.{i}", spec, i, grid)
        return g.op("Transpose", [x], perm=[0, 3, 1, 2], hint="last_feat")
