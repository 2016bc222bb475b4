"""MViTv2 (Detectron2 ``backbone.mvit.MViT``): multiscale blocks with pooled q/k/v, window and
global attention, decomposed relative position bias and residual pooling.

The image size is dynamic (FPN padding only), so window padding and the relative position
tables of global blocks (resized to the token grid as ``get_rel_pos`` does) are computed in the
graph. Tokens are ``(B, H, W, C)``; the batch is 1.
"""

from __future__ import annotations

from onnx import TensorProto

from export_tools.graph import GraphBuilder, Tensor
from export_tools.modeling.backbone.base import Feature
from export_tools.modeling.backbone.vit import dense, layer_norm, mlp_residual
from export_tools.modeling.layers import conv2d
from export_tools.modeling.weights import WeightStore

FLOAT, INT64 = TensorProto.FLOAT, TensorProto.INT64


def block_schedule(spec: dict) -> list[dict]:
    """Per block: dims, heads, q/kv strides, window size and the rel-pos construction size,
    following ``MViT.__init__``."""
    last = spec["last_block_indexes"]
    dim = dim_out = spec["embed_dim"]
    heads, kv, window = spec["num_heads"], spec["adaptive_kv_stride"], spec["adaptive_window_size"]
    size = spec["img_size"] // spec["patch_stride"]
    out = []
    for i in range(spec["depth"]):
        out.append({"dim": dim, "dim_out": dim_out, "heads": heads,
                    "stride_q": 2 if i - 1 in last else 1,
                    "stride_kv": kv * 2 if i in (last[1], last[2]) else kv,
                    "window": 0 if i in last[1:] else window, "size": size,
                    "stage_end": i in last})
        dim = dim_out
        if i in last:
            dim_out, heads, kv = dim_out * 2, heads * 2, max(kv // 2, 1)
        if i - 1 in last:
            window, size = window // 2, size // 2
    return out


def _one(g: GraphBuilder, v: int) -> Tensor:
    return g.i64([v])


def _pool(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, norm_prefix: str, ch: int,
          stride: int, eps: float) -> Tensor:
    """``attention_pool`` with a depthwise 3x3 conv and a LayerNorm: ``(B, H, W, C)``."""
    y = g.op("Transpose", [x], perm=[0, 3, 1, 2])
    y = conv2d(g, w, y, prefix, ch, ch, 3, stride=stride, padding=1, groups=ch)
    return layer_norm(g, w, g.op("Transpose", [y], perm=[0, 2, 3, 1]), norm_prefix, ch, eps)


def _partition(g: GraphBuilder, x: Tensor, ws: int, ch: int) -> tuple[Tensor, Tensor, Tensor]:
    """``window_partition`` with dynamic H, W: windows, padded (Hp, Wp) and original (H, W)."""
    hw = g.shape_of(x, 1, 3)
    pad = g.op("Mod", [g.op("Sub", [_one(g, ws), g.op("Mod", [hw, _one(g, ws)])]), _one(g, ws)])
    x = g.op("Pad", [x, g.concat([g.i64([0, 0, 0, 0, 0]), pad, g.i64([0])], 0)],
             mode="constant", hint="win_pad")
    hwp = g.op("Add", [hw, pad])
    counts = g.op("Div", [hwp, _one(g, ws)])
    nh, nw = g.slice(counts, [0], [1], [0]), g.slice(counts, [1], [2], [0])
    x = g.reshape(x, g.concat([g.i64([-1]), nh, g.i64([ws]), nw, g.i64([ws, ch])], 0))
    x = g.op("Transpose", [x], perm=[0, 1, 3, 2, 4, 5])
    return g.reshape(x, [-1, ws, ws, ch], hint="windows"), hwp, hw


def _unpartition(g: GraphBuilder, x: Tensor, ws: int, ch: int, hwp: Tensor,
                 hw: Tensor) -> Tensor:
    counts = g.op("Div", [hwp, _one(g, ws)])
    x = g.reshape(x, g.concat([g.i64([-1]), counts, g.i64([ws, ws, ch])], 0))
    x = g.op("Transpose", [x], perm=[0, 1, 3, 2, 4, 5])
    x = g.reshape(x, g.concat([g.i64([-1]), hwp, g.i64([ch])], 0))
    return g.op("Slice", [x, g.i64([0, 0]), hw, g.i64([1, 2])], hint="win_crop")


def rel_pos_lookup(g: GraphBuilder, table: Tensor, length: int, q: Tensor, k: Tensor) -> Tensor:
    """``get_rel_pos(q, k, rel_pos)`` in the graph: ``(q, k, C)`` for int64 sizes ``q``, ``k``.

    The table is first resized (linear, ``align_corners=False``) to ``2 max(q, k) - 1`` rows;
    at equal sizes that is exact, so it is done whether or not Detectron2 resizes.
    """
    qf, kf = g.cast(q, FLOAT), g.cast(k, FLOAT)
    rows = g.op("Sub", [g.op("Mul", [g.op("Max", [q, k]), g.i64([2])]), g.i64([1])])
    scale = g.op("Div", [g.f32([float(length)]), g.cast(rows, FLOAT)])
    dst = g.cast(g.op("Range", [g.const(0, dtype="int64"), g.squeeze(rows, [0]),
                                g.const(1, dtype="int64")]), FLOAT)
    src = g.op("Sub", [g.op("Mul", [g.op("Add", [dst, g.f32(0.5)]), scale]), g.f32(0.5)])
    src = g.op("Max", [src, g.f32(0.0)])
    i0 = g.cast(g.op("Floor", [src]), INT64)
    lam = g.unsqueeze(g.op("Sub", [src, g.cast(i0, FLOAT)]), [1])
    i1 = g.op("Min", [g.op("Add", [i0, g.const(1, dtype="int64")]),
                      g.const(length - 1, dtype="int64")])
    resized = g.op("Add", [g.op("Mul", [g.gather(table, i0), g.op("Sub", [g.f32(1.0), lam])]),
                           g.op("Mul", [g.gather(table, i1), lam])], hint="rel_pos_resized")
    k_over_q = g.op("Max", [g.op("Div", [kf, qf]), g.f32(1.0)])
    q_over_k = g.op("Max", [g.op("Div", [qf, kf]), g.f32(1.0)])
    qc = g.op("Mul", [_arange(g, q), k_over_q])
    kc = g.op("Mul", [_arange(g, k), q_over_k])
    rel = g.op("Sub", [g.unsqueeze(qc, [1]), g.unsqueeze(kc, [0])])
    rel = g.op("Add", [rel, g.op("Mul", [g.op("Sub", [kf, g.f32(1.0)]), q_over_k])])
    return g.gather(resized, g.cast(g.op("Floor", [rel]), INT64), hint="rel_pos")


def _arange(g: GraphBuilder, n: Tensor) -> Tensor:
    return g.cast(g.op("Range", [g.const(0, dtype="int64"), g.squeeze(n, [0]),
                                 g.const(1, dtype="int64")]), FLOAT)


def _rel_bias(g: GraphBuilder, w: WeightStore, attn: Tensor, q: Tensor, prefix: str,
              blk: dict, hd: int, q_hw: Tensor, k_hw: Tensor) -> Tensor:
    """``add_decomposed_rel_pos`` on ``attn (B, Nq, Nk)`` with ``q (B, qh, qw, C)``."""
    size = blk["size"]
    length = 2 * max(size // blk["stride_q"], size // blk["stride_kv"]) - 1
    tables = []
    for axis, name in ((0, "rel_pos_h"), (1, "rel_pos_w")):
        table = g.const(w.get(f"{prefix}.{name}", (length, hd)), f"{prefix}.{name}")
        qs, ks = (g.slice(t, [axis], [axis + 1], [0]) for t in (q_hw, k_hw))
        tables.append(rel_pos_lookup(g, table, length, qs, ks))
    rel_h = g.op("Einsum", [q, tables[0]], equation="bhwc,hkc->bhwk", hint="rel_h")
    rel_w = g.op("Einsum", [q, tables[1]], equation="bhwc,wkc->bhwk", hint="rel_w")
    shape5 = g.concat([g.i64([0]), q_hw, k_hw], 0)
    attn5 = g.reshape(attn, shape5)
    attn5 = g.op("Add", [attn5, g.unsqueeze(rel_h, [4])])
    attn5 = g.op("Add", [attn5, g.unsqueeze(rel_w, [3])], hint="attn_rel")
    return g.op("Reshape", [attn5, g.shape_of(attn)])


def _attention(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, blk: dict,
               spec: dict) -> Tensor:
    """``MultiScaleAttention`` on ``(1, H, W, dim)`` -> ``(1, H', W', dim_out)``."""
    heads, dout, eps = blk["heads"], blk["dim_out"], spec["ln_eps"]
    hd = dout // heads
    qkv = dense(g, w, x, f"{prefix}.qkv", blk["dim"], 3 * dout, spec["qkv_bias"])
    qkv = g.op("Transpose", [g.reshape(qkv, [0, 0, 0, 3, heads, hd])], perm=[3, 0, 4, 1, 2, 5])
    parts = g.op("Split", [g.squeeze(qkv, [1])], n_out=3, axis=0, hint="qkv")
    q, k, v = (g.squeeze(t, [0]) for t in parts)  # (heads, H, W, hd)
    q = _pool(g, w, q, f"{prefix}.pool_q", f"{prefix}.norm_q", hd, blk["stride_q"], eps)
    k = _pool(g, w, k, f"{prefix}.pool_k", f"{prefix}.norm_k", hd, blk["stride_kv"], eps)
    v = _pool(g, w, v, f"{prefix}.pool_v", f"{prefix}.norm_v", hd, blk["stride_kv"], eps)
    ori_q = q
    if blk["window"]:
        qw, kw = blk["window"] // blk["stride_q"], blk["window"] // blk["stride_kv"]
        q, hwp, hw = _partition(g, q, qw, hd)
        k = _partition(g, k, kw, hd)[0]
        v = _partition(g, v, kw, hd)[0]
        q_hw, k_hw = g.i64([qw, qw]), g.i64([kw, kw])
    else:
        q_hw, k_hw = g.shape_of(q, 1, 3), g.shape_of(k, 1, 3)
    q_shape = g.shape_of(q)
    q2, k2, v2 = (g.reshape(t, [0, -1, hd]) for t in (q, k, v))
    attn = g.op("MatMul", [g.op("Mul", [q2, g.f32(hd ** -0.5)]),
                           g.op("Transpose", [k2], perm=[0, 2, 1])], hint="attn")
    if spec["use_rel_pos"]:
        attn = _rel_bias(g, w, attn, q, prefix, blk, hd, q_hw, k_hw)
    out = g.op("MatMul", [g.op("Softmax", [attn], axis=-1), v2])
    out = g.op("Reshape", [out, q_shape])
    if blk["window"]:
        out = _unpartition(g, out, qw, hd, hwp, hw)
    if spec["residual_pooling"]:
        out = g.op("Add", [out, ori_q], hint="residual_pool")
    out = g.op("Transpose", [g.unsqueeze(out, [0])], perm=[0, 2, 3, 1, 4])
    return dense(g, w, g.reshape(out, [0, 0, 0, -1]), f"{prefix}.proj", dout, dout)


def _block(g: GraphBuilder, w: WeightStore, x: Tensor, prefix: str, blk: dict,
           spec: dict) -> Tensor:
    eps = spec["ln_eps"]
    x_norm = layer_norm(g, w, x, f"{prefix}.norm1", blk["dim"], eps)
    x_block = _attention(g, w, x_norm, f"{prefix}.attn", blk, spec)
    if blk["dim"] != blk["dim_out"]:
        x = dense(g, w, x_norm, f"{prefix}.proj", blk["dim"], blk["dim_out"])
    if blk["stride_q"] > 1:
        s = blk["stride_q"]
        y = g.op("MaxPool", [g.op("Transpose", [x], perm=[0, 3, 1, 2])],
                 kernel_shape=[s + 1, s + 1], strides=[s, s], pads=[(s + 1) // 2] * 4,
                 hint="pool_skip")
        x = g.op("Transpose", [y], perm=[0, 2, 3, 1])
    x = g.op("Add", [x, x_block], hint="residual_attn")
    return mlp_residual(g, w, x, prefix, blk["dim_out"], spec["mlp_ratio"], eps)


def build_mvit(g: GraphBuilder, w: WeightStore, image: Tensor, prefix: str,
               spec: dict) -> dict[str, Feature]:
    """Padded image -> ``scale2..scale5`` features (those in ``spec["out_features"]``)."""
    k, s, p, dim = (spec["patch_kernel"], spec["patch_stride"], spec["patch_padding"],
                    spec["embed_dim"])
    feats: dict[str, Feature] = {}
    with g.scope("mvit"):
        x = conv2d(g, w, image, f"{prefix}.patch_embed.proj", 3, dim, k, stride=s, padding=p)
        x = g.op("Transpose", [x], perm=[0, 2, 3, 1], hint="tokens")
        stage, stride = 2, s
        for i, blk in enumerate(block_schedule(spec)):
            with g.scope(f"block{i}"):
                x = _block(g, w, x, f"{prefix}.blocks.{i}", blk, spec)
            if blk["stage_end"]:
                name = f"scale{stage}"
                if name in spec["out_features"]:
                    y = layer_norm(g, w, x, f"{prefix}.{name}_norm", blk["dim_out"],
                                   spec["ln_eps"])
                    feats[name] = Feature(g.op("Transpose", [y], perm=[0, 3, 1, 2]),
                                          blk["dim_out"], stride)
                stage, stride = stage + 1, stride * 2
    return feats
